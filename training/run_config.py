"""A training run described by one JSON file: the model, the data and the optimiser settings.

Every section rejects unknown keys and impossible values before any training starts.
"""

import dataclasses
import difflib
import json
from pathlib import Path

from pixelrnn_tf.cells import CELLS
from pixelrnn_tf.config import CAMERA_ARCHS, ConfigError, ModelConfig, dataclass_from_dict

DATASETS = ("synthetic_gestures", "cambridge_hand_gesture", "tulips1")
STRATEGIES = ("default", "mirrored", "multiworker")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """dataset: synthetic_gestures (default, generated), cambridge_hand_gesture or tulips1 (manual
    download into manual_dir). protocol: the split (pixelrnn: the authors' own; or cambridge standard, tulips1
    stratified / speaker_fold_N).
    *_clips: synthetic split sizes. translate: random translation (fraction) in training."""

    dataset: str = "synthetic_gestures"
    protocol: str = "pixelrnn"
    manual_dir: str = None
    data_dir: str = None
    train_clips: int = 1800
    val_clips: int = 270
    test_clips: int = 270
    seed: int = 0
    translate: float = 0.0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ConfigError(f"Unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}.")
        for name in ("train_clips", "val_clips", "test_clips"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not 0 <= self.translate < 0.5:
            raise ConfigError(f"translate is a fraction of the frame in [0, 0.5), got {self.translate}.")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 16
    learning_rate: float = 0.003
    seed: int = 0
    strategy: str = "default"
    lr_patience: int = 5
    lr_factor: float = 0.5

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}.")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"Unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}.")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, values):
        unknown = set(values) - {"model", "data", "train", "description"}
        if unknown:
            raise ConfigError(
                f"Unknown section(s) {', '.join(sorted(map(repr, unknown)))}; a run config has model, data, train."
            )
        return cls(
            model=ModelConfig.from_dict(values.get("model", {})),
            data=dataclass_from_dict(DataConfig, values.get("data", {}), "[data]"),
            train=dataclass_from_dict(TrainConfig, values.get("train", {}), "[train]"),
        )

    @classmethod
    def load(cls, path):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No run config at {path}. Pass a JSON file or a bundled name (`pixelrnn configs` lists them).")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path} is not valid JSON: {error}") from None
        return cls.from_dict(values)

    def replace(self, **sections):
        """Override single keys: replace(train={"epochs": 3}, data={"dataset": "tulips1"})."""
        values = self.to_dict()
        for section, overrides in sections.items():
            values[section].update({k: v for k, v in overrides.items() if v is not None})
        return RunConfig.from_dict(values)

    def override(self, sections):
        """Set keys exactly, None included: override({"model": {"output_threshold": None}})."""
        values = self.to_dict()
        for section, overrides in sections.items():
            values[section].update(overrides)
        return RunConfig.from_dict(values)

    def to_dict(self):
        return {"model": self.model.to_dict(), "data": dataclasses.asdict(self.data), "train": dataclasses.asdict(self.train)}


def configs_dir():
    return Path(__file__).parent / "configs"


# Generated configs: "<dataset>_<arch>[_2layer][_float]" for every combination of Fig 2 of the
# paper, made from the dataset's PixelRNN file (its data and train sections) with the model's arch,
# CNN depth and precision replaced. A file of the same name, where one is shipped, wins.
DATASET_PREFIXES = {"synthetic": "synthetic_gestures", "cambridge": "cambridge_hand_gesture", "tulips1": "tulips1"}
_BASE_CONFIG = {"synthetic": "default", "cambridge": "cambridge_pixelrnn", "tulips1": "tulips1_pixelrnn"}
ARCHS = tuple(CELLS)


def point_name(arch, cnn_layers=1, binary=True):
    """"mgu_2layer_float": a model's part of a bundled name."""
    layers = "_2layer" if cnn_layers == 2 and arch not in CAMERA_ARCHS else ""
    return f"{arch}{layers}{'' if binary else '_float'}"


def config_name(dataset, arch, cnn_layers=1, binary=True):
    """The bundled name of a Fig 2 point: config_name("cambridge_hand_gesture", "mgu", 2, False)
    is "cambridge_mgu_2layer_float"."""
    prefix = {full: short for short, full in DATASET_PREFIXES.items()}[dataset]
    return f"{prefix}_{point_name(arch, cnn_layers, binary)}"


def generated_configs():
    """{name: (base config name, model overrides)} for every generated name."""
    names = {}
    for prefix, base in _BASE_CONFIG.items():
        for arch in ARCHS:
            for cnn_layers in (1,) if arch in CAMERA_ARCHS else (1, 2):
                for binary in (True, False):
                    model = {"arch": arch, "cnn_layers": cnn_layers, "binary": binary}
                    names[config_name(DATASET_PREFIXES[prefix], arch, cnn_layers, binary)] = (base, model)
    return names


def bundled_configs():
    return sorted({p.stem for p in configs_dir().glob("*.json")} | set(generated_configs()))


def describe(name):
    """One line about a bundled config."""
    path = configs_dir() / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text()).get("description", "")
    base, model = generated_configs()[name]
    precision = "binary" if model["binary"] else "32-bit float"
    layers = "" if model["arch"] in CAMERA_ARCHS else f", {model['cnn_layers']}-layer CNN"
    return f"{model['arch']}{layers}, {precision} (the data and training of {base})"


def resolve(config):
    """A RunConfig from None (the bundled `default` run), a bundled config name, or a JSON file."""
    if config is None:
        config = "default"
    if isinstance(config, RunConfig):
        return config
    candidate = configs_dir() / f"{config}.json"
    if candidate.is_file():
        return RunConfig.load(candidate)
    generated = generated_configs().get(str(config))
    if generated is not None:
        base, model = generated
        return resolve(base).replace(model=model)
    if not Path(config).is_file() and not str(config).endswith(".json"):
        close = difflib.get_close_matches(str(config), bundled_configs(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise FileNotFoundError(
            f"No run config named {config!r}: not a bundled name, and no such file.{hint} `pixelrnn configs` lists the bundled "
            "names (<dataset>_<arch>[_2layer][_float], e.g. cambridge_mgu_2layer_float)."
        )
    return RunConfig.load(config)


def parse_overrides(assignments):
    """{section: {key: value}} from ["model.arch=mgu", "epochs=3", ...]. A key without a section is
    looked up in model, data and train; values are JSON (3, 0.5, true, null, "x") or else strings."""
    fields = {
        "model": {f.name for f in dataclasses.fields(ModelConfig)},
        "data": {f.name for f in dataclasses.fields(DataConfig)},
        "train": {f.name for f in dataclasses.fields(TrainConfig)},
    }
    overrides = {}
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"--set takes key=value (e.g. --set model.readout_pool=4), got {assignment!r}.")
        section, _, name = key.strip().rpartition(".")
        sections = [section] if section else [s for s, names in fields.items() if name in names]
        if section and section not in fields:
            raise ConfigError(f"Unknown config section {section!r} in --set {assignment}; sections: model, data, train.")
        if not sections or name not in fields[sections[0]]:
            known = sorted(f"{s}.{n}" for s, names in fields.items() for n in names)
            close = difflib.get_close_matches(key.strip(), known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"Unknown config key {key.strip()!r} in --set.{hint} Known keys: {', '.join(known)}.")
        if len(sections) > 1:
            raise ConfigError(f"{name!r} is in several sections ({', '.join(sections)}); write e.g. --set {sections[0]}.{name}=...")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        overrides.setdefault(sections[0], {})[name] = value
    return overrides
