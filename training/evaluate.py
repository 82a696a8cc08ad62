"""Reload a finished run and measure its accuracy, optionally with analog noise at inference."""

import numpy as np

import pixelrnn_tf
from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError
from training.runs import SPLITS, RunDirectory
from training.train import predict_labels

NOISE_KEYS = ("cnn_noise_stddev", "gate_noise_stddev", "readout_noise_stddev")


def model_with_noise(run, config, noise_stddev=None, noise_levels=None):
    """The run's best model rebuilt with noise on at inference: the trained noise levels,
    `noise_stddev` for all of them, or `noise_levels` ({key of NOISE_KEYS: stddev})."""
    overrides = {key: getattr(config.model, key) for key in NOISE_KEYS}
    if noise_stddev is not None:
        overrides = {key: float(noise_stddev) for key in NOISE_KEYS}
    if noise_levels is not None:
        unknown = set(noise_levels) - set(NOISE_KEYS)
        if unknown:
            raise ConfigError(f"Unknown noise level(s) {sorted(unknown)}; the model's noise sources are {', '.join(NOISE_KEYS)}.")
        overrides = {key: float(noise_levels.get(key, 0.0)) for key in NOISE_KEYS}
    if not any(overrides.values()):
        raise ConfigError("This model was trained without noise; give --noise-stddev to evaluate with noise.")
    trained = run.load_model()
    noisy = pixelrnn_tf.build_model(config.model, num_classes=trained.output_shape[-1], noise_at_inference=True, **overrides)
    noisy.set_weights(trained.get_weights())
    return noisy


def evaluate(run_dir, split="test", noise=False, noise_stddev=None, repeats=1, seed=0, noise_levels=None):
    """Accuracy of a run's best model on `split`: {"split", "accuracy" (mean), "std", "repeats"}.
    noise: the trained noise levels at inference; noise_stddev: one level for every source;
    noise_levels: {source: level} (see model_with_noise)."""
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    if repeats < 1:
        raise ConfigError(f"--repeats must be >= 1, got {repeats}.")
    run = RunDirectory(run_dir).require_finished()
    config = run.read_config()
    splits, _ = run.splits(config)
    noise = bool(noise or noise_stddev is not None or noise_levels is not None)
    if noise:
        model = model_with_noise(run, config, noise_stddev, noise_levels)
    else:
        model, repeats = run.load_model(), 1  # deterministic: once is enough
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
        "noise": noise,
    }
