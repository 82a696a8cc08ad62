"""Reload a finished run and measure its accuracy, optionally with analog noise at inference."""

import json
from pathlib import Path

import numpy as np

import pixelrnn_tf
from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError
from training import data
from training.run_config import RunConfig
from training.train import predict_labels

NOISE_KEYS = ("cnn_noise_stddev", "gate_noise_stddev", "readout_noise_stddev")


def open_run(run_dir):
    run = Path(run_dir)
    if not (run / "best.keras").is_file() or not (run / "config.json").is_file():
        raise FileNotFoundError(
            f"{run} is not a finished run directory (expected config.json and best.keras in it); "
            "create one with `pixelrnn train --out DIR`."
        )
    return run, RunConfig.from_dict(json.loads((run / "config.json").read_text()))


def model_with_noise(run, config, noise_stddev=None):
    """The run's best model rebuilt with noise on at inference: the trained noise levels, or
    `noise_stddev` for all of them."""
    overrides = {key: getattr(config.model, key) for key in NOISE_KEYS}
    if noise_stddev is not None:
        overrides = {key: float(noise_stddev) for key in NOISE_KEYS}
    if not any(overrides.values()):
        raise ConfigError("This model was trained without noise; give --noise-stddev to evaluate with noise.")
    trained = pixelrnn_tf.load_model(run / "best.keras")
    noisy = pixelrnn_tf.build_model(config.model, num_classes=trained.output_shape[-1], noise_at_inference=True, **overrides)
    noisy.set_weights(trained.get_weights())
    return noisy


def evaluate(run_dir, split="test", noise=False, noise_stddev=None, repeats=1, seed=0):
    """Accuracy of a run's best model on `split`: {"split", "accuracy" (mean), "std", "repeats"}."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"Unknown split {split!r}; choose train, val or test.")
    if repeats < 1:
        raise ConfigError(f"--repeats must be >= 1, got {repeats}.")
    run, config = open_run(run_dir)
    splits, _ = data.load_splits(config.data, config.model, config.train.batch_size)
    if noise or noise_stddev is not None:
        model = model_with_noise(run, config, noise_stddev)
    else:
        model, repeats = pixelrnn_tf.load_model(run / "best.keras"), 1  # deterministic: once is enough
    tf.keras.utils.set_random_seed(seed)
    accuracies = []
    for _ in range(repeats):
        labels, predictions = predict_labels(model, splits[split])
        accuracies.append(float(np.mean(labels == predictions)))
    return {
        "split": split,
        "accuracy": float(np.mean(accuracies)),
        "std": float(np.std(accuracies)),
        "repeats": repeats,
        "noise": bool(noise or noise_stddev is not None),
    }
