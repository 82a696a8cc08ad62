"""Reload a finished run and measure its accuracy, optionally with analog noise at inference."""

import numpy as np

import pixelrnn_tf
from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError
from training.runs import SPLITS, RunDirectory
from training.train import predict_labels

NOISE_KEYS = ("cnn_noise_stddev", "gate_noise_stddev", "readout_noise_stddev")


def model_with_noise(run, config, noise_stddev=None):
    """The run's best model rebuilt with noise on at inference: the trained noise levels, or
    `noise_stddev` for all of them."""
    overrides = {key: getattr(config.model, key) for key in NOISE_KEYS}
    if noise_stddev is not None:
        overrides = {key: float(noise_stddev) for key in NOISE_KEYS}
    if not any(overrides.values()):
        raise ConfigError("This model was trained without noise; give --noise-stddev to evaluate with noise.")
    trained = run.load_model()
    noisy = pixelrnn_tf.build_model(config.model, num_classes=trained.output_shape[-1], noise_at_inference=True, **overrides)
    noisy.set_weights(trained.get_weights())
    return noisy


def evaluate(run_dir, split="test", noise=False, noise_stddev=None, repeats=1, seed=0):
    """Accuracy of a run's best model on `split`: {"split", "accuracy" (mean), "std", "repeats"}."""
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")
    if repeats < 1:
        raise ConfigError(f"--repeats must be >= 1, got {repeats}.")
    run = RunDirectory(run_dir).require_finished()
    config = run.read_config()
    splits, _ = run.splits(config)
    if noise or noise_stddev is not None:
        model = model_with_noise(run, config, noise_stddev)
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
        "noise": bool(noise or noise_stddev is not None),
    }
