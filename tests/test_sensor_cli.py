"""The emulate and finetune-decoder command bodies on a tiny run directory."""

import json

import numpy as np
import pytest

import pixelrnn_tf
from sensor import cli


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


@pytest.mark.slow
def test_emulate_without_noise_agrees_with_keras_and_traces(run_dir, tmp_path):
    lines = []
    result = cli.emulate(str(run_dir), noise="none", trace=str(tmp_path / "trace"), input_white=5, echo=lines.append)
    assert result["clips"] == 3 and result["saturated_writes"] == 0
    assert result["readout_agreement"] == 1.0
    assert result["emulated_accuracy"] == result["keras_accuracy"]
    assert "estimated chip time per frame" in lines[0]
    assert (tmp_path / "trace" / "program.txt").read_text().startswith("reset:")
    assert result["trace"]["snapshots"] > 10 and list((tmp_path / "trace" / "snapshots").glob("*.png"))


@pytest.mark.slow
def test_emulate_with_noise_differs_and_finetune_writes_a_model(run_dir):
    noisy = cli.emulate(str(run_dir), noise="scamp5", repeats=2, echo=lambda _: None)
    assert noisy["readout_agreement"] < 0.5  # analog noise makes the o readouts non-integer
    result = cli.finetune_decoder(str(run_dir), noise="scamp5", epochs=2, echo=lambda _: None)
    tuned = pixelrnn_tf.load_model(result["model"])
    original = pixelrnn_tf.load_model(run_dir / "best.keras")
    np.testing.assert_array_equal(
        tuned.get_layer("in_pixel_cnn").get_weights()[0], original.get_layer("in_pixel_cnn").get_weights()[0]
    )
    assert 0.0 <= result["test_accuracy_after"] <= 1.0


def test_bad_arguments_are_refused(run_dir):
    with pytest.raises(ValueError, match="repeats"):
        cli.emulate(str(run_dir), repeats=0)
    with pytest.raises(ValueError, match="readouts"):
        cli.finetune_decoder(str(run_dir), readouts="chip")
    with pytest.raises(FileNotFoundError):
        cli.emulate(str(run_dir / "missing"))


def test_readout_gain_keeps_99_percent_of_the_readouts_in_range():
    import sensor
    from pixelrnn_tf._keras import tf

    tf.keras.utils.set_random_seed(2)
    model = pixelrnn_tf.build_model(arch="pixelrnn", frames=4, window=2)
    clips = np.random.default_rng(3).standard_normal((6, 4, 64, 64, 1)).astype("float32")
    dataset = [(clips[:3], None), (clips[3:], None)]
    gain = cli.readout_gain(model, dataset, sensor.Scamp5())
    level = np.percentile(np.abs(pixelrnn_tf.sensor_model(model)(clips).numpy()), 99)
    assert gain == max(1, int(127 // level))
    assert gain * level <= 127 < (gain + 1) * level or gain == 1
