"""A training run described by one JSON file: the model, the data and the optimiser settings.

Every section rejects unknown keys and impossible values before any training starts.
"""

import dataclasses
import json
from pathlib import Path

from pixelrnn_tf.config import ConfigError, ModelConfig, dataclass_from_dict

DATASETS = ("synthetic_gestures", "cambridge_hand_gesture", "tulips1")
STRATEGIES = ("default", "mirrored", "multiworker")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """dataset: synthetic_gestures (default, generated), cambridge_hand_gesture or tulips1 (manual
    download into manual_dir). protocol: the split (pixelrnn, or standard / speaker_fold_N).
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
            raise FileNotFoundError(f"No run config at {path}. Ship one or use a bundled name: {', '.join(bundled_configs())}.")
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

    def to_dict(self):
        return {"model": self.model.to_dict(), "data": dataclasses.asdict(self.data), "train": dataclasses.asdict(self.train)}


def configs_dir():
    return Path(__file__).parent / "configs"


def bundled_configs():
    return sorted(p.stem for p in configs_dir().glob("*.json"))


def resolve(config):
    """A RunConfig from None (the bundled `default` run), a bundled config name, or a JSON file."""
    if config is None:
        config = "default"
    if isinstance(config, RunConfig):
        return config
    candidate = configs_dir() / f"{config}.json"
    return RunConfig.load(candidate if candidate.is_file() else config)
