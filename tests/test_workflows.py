"""The workflows that join run directories with the emulator and the exporter, on tiny runs:
emulate a run, fine-tune its decoder, import a checkpoint, and their bad input."""

import json

import numpy as np
import pytest

import pixelrnn_tf
from pixelrnn_cli import workflows
from pixelrnn_tf.config import ConfigError
from training.runs import RunDirectory, RunNotFoundError


@pytest.fixture
def run_dir(tmp_path):
    config = {
        "model": {"arch": "pixelrnn", "frames": 4, "window": 2},
        "data": {"train_clips": 6, "val_clips": 3, "test_clips": 3},
        "train": {"batch_size": 3},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = pixelrnn_tf.build_model(config["model"])
    model.save(tmp_path / "best.keras")
    return tmp_path


def _accuracy(model, split):
    """Accuracy of the whole Keras model (clips -> logits) on a split of the run: an oracle that
    does not go through readouts."""
    labels, predictions = [], []
    for clips, batch_labels in split:
        predictions.append(np.argmax(model.predict(clips, verbose=0), -1))
        labels.append(batch_labels.numpy())
    return float(np.mean(np.concatenate(predictions) == np.concatenate(labels)))


@pytest.mark.slow
def test_emulate_without_noise_agrees_with_keras_and_traces(run_dir, tmp_path):
    result = workflows.emulate_run(str(run_dir), noise="none", trace=str(tmp_path / "trace"), input_white=5)
    assert result["clips"] == 3 and result["saturated_writes"] == 0
    assert result["readout_agreement"] == 1.0
    splits, _ = RunDirectory(run_dir).splits()
    assert result["keras_accuracy"] == result["emulated_accuracy"] == _accuracy(pixelrnn_tf.load_model(run_dir / "best.keras"), splits["test"])
    assert (tmp_path / "trace" / "program.txt").read_text().startswith("reset:")
    assert result["trace"]["snapshots"] > 10 and list((tmp_path / "trace" / "snapshots").glob("*.png"))


@pytest.mark.slow
def test_emulate_with_noise_differs_and_finetune_writes_a_model(run_dir):
    noisy = workflows.emulate_run(str(run_dir), noise="scamp5", repeats=2)
    assert noisy["readout_agreement"] < 0.5  # analog noise makes the o readouts non-integer
    assert len(noisy["runs"]) == 2 and noisy["runs"][0]["mean_abs_difference"] != noisy["runs"][1]["mean_abs_difference"]
    result = workflows.finetune_decoder(str(run_dir), noise="scamp5", epochs=2)
    assert result["model"] == str(run_dir / "finetuned.keras")
    tuned = pixelrnn_tf.load_model(result["model"])
    original = pixelrnn_tf.load_model(run_dir / "best.keras")
    np.testing.assert_array_equal(
        tuned.get_layer("in_pixel_cnn").get_weights()[0], original.get_layer("in_pixel_cnn").get_weights()[0]
    )
    assert not np.array_equal(tuned.get_layer("decoder").get_weights()[0], original.get_layer("decoder").get_weights()[0])


@pytest.mark.slow
def test_finetune_on_keras_readouts_reports_what_the_models_score(run_dir, tmp_path):
    """The control path (no emulator): `before` is the trained model's test accuracy and `after`
    the saved model's, both measured here on clips through the whole model."""
    result = workflows.finetune_decoder(str(run_dir), readouts="keras", epochs=3, learning_rate=1e-2, out=str(tmp_path / "t.keras"))
    splits, _ = RunDirectory(run_dir).splits()
    assert result["test_accuracy_before"] == _accuracy(pixelrnn_tf.load_model(run_dir / "best.keras"), splits["test"])
    assert result["test_accuracy_after"] == _accuracy(pixelrnn_tf.load_model(tmp_path / "t.keras"), splits["test"])


def test_bad_arguments_are_named_errors(run_dir):
    with pytest.raises(ConfigError, match="repeats"):
        workflows.emulate_run(str(run_dir), repeats=0)
    with pytest.raises(ConfigError, match="Unknown split 'dev'"):
        workflows.emulate_run(str(run_dir), split="dev")
    with pytest.raises(ConfigError, match="readouts"):
        workflows.finetune_decoder(str(run_dir), readouts="chip")
    with pytest.raises(RunNotFoundError, match="not a finished run directory"):
        workflows.emulate_run(str(run_dir / "missing"))
    with pytest.raises(ConfigError, match="Unknown noise key.*'temporal_std'"):
        (run_dir / "noise.json").write_text(json.dumps({"temporal_std": 1.0}))
        workflows.emulate_run(str(run_dir), noise=str(run_dir / "noise.json"))


def test_recurrent_gain_keeps_99_percent_of_the_readouts_in_range():
    import sensor

    readouts = np.random.default_rng(3).standard_normal(10_000) * 7.0
    gain = sensor.recurrent_gain(readouts, sensor.Scamp5())
    level = np.percentile(np.abs(readouts), 99)  # about 2.58 sigma = 18 model units
    assert gain == 7 and gain * level <= 127 < (gain + 1) * level
    assert sensor.recurrent_gain(np.full(10, 500.0), sensor.Scamp5()) == 1  # never below one unit
