"""The run directory: the one owner of its format, read and written by every command through here.

A run directory holds:
    config.json          the resolved run configuration (model, data, train); written first
    best.keras           the model with the best validation accuracy
    metrics.json         accuracy per split and the model's sensor cost
    history.csv          per-epoch metrics; logs/ TensorBoard; backup/ state to resume a run
    confusion.png        test confusion matrix; curves.png training curves
    imported_from.json   for an imported checkpoint: its path, SHA-256 and arch
    finetuned.keras      the model with a decoder fine-tuned on emulated readouts

A folder is a finished run once it has config.json and best.keras. Every file is written through
a temporary file and a rename, so a reader never sees half of one.
"""

import json
from pathlib import Path

import numpy as np

import pixelrnn_tf
from pixelrnn_tf.config import ConfigError
from pixelrnn_tf.files import save_model_atomic, write_text_atomic
from training import data
from training.run_config import RunConfig

CONFIG = "config.json"
BEST = "best.keras"
METRICS = "metrics.json"
HISTORY = "history.csv"
LOGS = "logs"
BACKUP = "backup"
CONFUSION = "confusion.png"
CURVES = "curves.png"
PROVENANCE = "imported_from.json"
FINETUNED = "finetuned.keras"
SPLITS = ("train", "val", "test")


class RunNotFoundError(FileNotFoundError):
    """A path that is not a (finished) run directory, with what was expected there."""


class RunDirectory:
    """A run directory at `path` (it need not exist yet)."""

    def __init__(self, path):
        self.path = Path(path)

    def __fspath__(self):
        return str(self.path)

    def __str__(self):
        return str(self.path)

    def file(self, name):
        return self.path / name

    # ------------------------------------------------------------------ reading
    @property
    def is_finished(self):
        return self.file(CONFIG).is_file() and self.file(BEST).is_file()

    def require_finished(self):
        """self, or RunNotFoundError naming what a finished run holds."""
        if not self.is_finished:
            raise RunNotFoundError(
                f"{self.path} is not a finished run directory (expected {CONFIG} and {BEST} in it); "
                "create one with `pixelrnn train --out DIR` or `pixelrnn import-torch CHECKPOINT --out DIR`."
            )
        return self

    def read_config(self):
        return RunConfig.load(self.file(CONFIG))

    def load_model(self, name=BEST):
        path = self.file(name)
        if not path.is_file():
            raise RunNotFoundError(f"{self.path} has no {name}.")
        return pixelrnn_tf.load_model(path)

    def read_json(self, name):
        return json.loads(self.file(name).read_text())

    def splits(self, config=None):
        """{"train", "val", "test"}: the batched datasets of the run's data config, and the class names."""
        config = config or self.read_config()
        return data.load_splits(config.data, config.model, config.train.batch_size)

    def sample(self, split, max_clips):
        """{"clips", "labels"}: up to max_clips clips of `split` as numpy arrays, as training loads them."""
        if split not in SPLITS:
            raise ConfigError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
        config = self.read_config()
        if config.data.dataset == "synthetic_gestures":
            # Synthetic clip i depends only on (seed, i): generate just the clips that are needed.
            sizes = {f"{name}_clips": 1 for name in SPLITS}
            sizes[f"{split}_clips"] = min(getattr(config.data, f"{split}_clips"), max_clips)
            config = config.replace(data=sizes)
        splits, _ = self.splits(config)
        clips, labels, count = [], [], 0
        for batch_clips, batch_labels in splits[split]:
            clips.append(batch_clips.numpy())
            labels.append(batch_labels.numpy())
            count += len(clips[-1])
            if count >= max_clips:
                break
        return {"clips": np.concatenate(clips)[:max_clips], "labels": np.concatenate(labels)[:max_clips]}

    # ------------------------------------------------------------------ writing
    def start(self, config):
        """Create the folder and write config.json for a training run of `config`. A folder that
        holds an interrupted run of another config is refused (its backup would resume it)."""
        self.path.mkdir(parents=True, exist_ok=True)
        previous = self.file(CONFIG)
        if previous.is_file() and self.file(BACKUP).exists() and json.loads(previous.read_text()) != config.to_dict():
            raise ConfigError(
                f"{self.path} holds an interrupted run with a different config; resume it with the same config "
                "or choose another --out."
            )
        self.write_json(CONFIG, config.to_dict())

    def create(self, config, model, provenance=None, overwrite=False):
        """A finished run from a model made elsewhere (an imported checkpoint): best.keras, the
        provenance, and config.json last, so that until it exists the folder is not a run."""
        taken = [name for name in (CONFIG, BEST) if self.file(name).exists()]
        if taken and not overwrite:
            raise ConfigError(f"{self.path} already holds a run ({', '.join(taken)}); choose a new --out directory.")
        self.path.mkdir(parents=True, exist_ok=True)
        self.save_model(model)
        if provenance is not None:
            self.write_json(PROVENANCE, provenance)
        self.write_json(CONFIG, config.to_dict() if isinstance(config, RunConfig) else config)
        return self

    def save_model(self, model, name=BEST):
        save_model_atomic(model, self.file(name))
        return self.file(name)

    def write_json(self, name, values):
        write_text_atomic(self.file(name), json.dumps(values, indent=2))
