"""sensor.compile: the emulated program equals the Keras model's readouts exactly (noise off)."""

import dataclasses

import numpy as np
import pytest

import pixelrnn_tf
import sensor
from pixelrnn_tf._keras import tf


def _random_model(arch, cnn_layers=1, seed=0, readout_pool=1, thresholds=None):
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    extra = {"forget_threshold": True} if arch == "pixelrnn" else {}
    model = pixelrnn_tf.build_model(
        arch=arch, cnn_layers=cnn_layers, frames=4, window=2, learned_input_threshold=True, readout_pool=readout_pool, **extra
    )
    encoder = model.get_layer("in_pixel_cnn")
    for layer, threshold in enumerate(encoder.thresholds):
        # fractional thresholds, including ones just above an integer and <= 0 (relu makes q = +1)
        threshold.assign(thresholds[layer] if thresholds else rng.uniform(-0.5, 4.0))
    encoder.input_threshold.assign(rng.uniform(-0.3, 0.3))
    if arch == "pixelrnn":
        model.get_layer("recurrence").cell.theta.assign(rng.uniform(-3, 3))
    return model


def _clips(seed=1):
    return np.random.default_rng(seed).standard_normal((2, 4, 64, 64, 1)).astype("float32")


@pytest.mark.parametrize(
    "arch, cnn_layers, readout_pool, thresholds",
    [("pixelrnn", 1, 1, [1.02]), ("pixelrnn", 2, 1, None), ("srnn", 1, 2, [-0.2]), ("cnn", 1, 1, None), ("pixelrnn", 1, 3, None)],
)
def test_emulator_equals_the_keras_model_exactly(arch, cnn_layers, readout_pool, thresholds):
    """input_white 5 keeps every CNN sum (|c| <= 25) inside the range, so exact equality is due."""
    model = _random_model(arch, cnn_layers, readout_pool=readout_pool, thresholds=thresholds)
    clips = _clips()
    expected = pixelrnn_tf.sensor_model(model)(clips).numpy()
    result = sensor.Emulator(sensor.compile(model, input_white=5)).run(clips)
    assert result.saturated == 0
    assert result.readouts.shape == expected.shape
    np.testing.assert_array_equal(result.readouts, expected)


def test_pooling_before_the_cell_is_refused_with_the_alternative():
    model = pixelrnn_tf.build_model(arch="pixelrnn", rnn_input_pool=2)
    with pytest.raises(sensor.CompileError, match="rnn_input_pool=2.*readout_pool"):
        sensor.compile(model)


def test_saturation_at_the_papers_input_white_is_counted():
    """input_white 10: a kernel that matches a uniform frame sums to 25 -> 250 units, clipped at
    127. The threshold still decides the same, so readouts agree, but the clipping is reported."""
    model = _random_model("cnn", thresholds=[2.5])
    encoder = model.get_layer("in_pixel_cnn")
    kernel = encoder.kernels[0].numpy()
    kernel[..., 0] = 1.0  # channel 0 matches an all-white frame at every tap
    encoder.kernels[0].assign(kernel)
    encoder.input_threshold.assign(0.0)
    clips = np.ones((1, 2, 64, 64, 1), np.float32)
    expected = pixelrnn_tf.sensor_model(model)(clips).numpy()
    exact = sensor.Emulator(sensor.compile(model, input_white=5)).run(clips)
    paper = sensor.Emulator(sensor.compile(model, input_white=10)).run(clips)
    assert exact.saturated == 0
    # channel 0: every interior pixel of its element passes 127 on the way to 250; there are at
    # least 60 x 60 of them per frame
    assert paper.saturated >= 2 * 60 * 60
    np.testing.assert_array_equal(paper.readouts, expected)


def test_compile_reads_the_model_through_its_in_pixel_tables():
    model = _random_model("pixelrnn")
    tables = pixelrnn_tf.in_pixel_tables(model)
    assert tables.cnn_kernels[0].shape == (5, 5, 1, 16) and tables.window == 2
    assert list(tables.cell_kernels) == ["w_f", "u_f", "w_o", "u_o"]  # gate by gate, the sensor's load order
    assert str(sensor.compile_tables(tables)) == str(sensor.compile(model))


def test_compiled_program_fits_scamp5_and_estimates_chip_time():
    program = sensor.compile(_random_model("pixelrnn"))
    config = sensor.Scamp5()
    program.allocate(config)  # raises RegisterError if it does not fit
    stages = program.words_by_stage(config)
    assert set(stages) >= {"input", "cnn1", "rnn"}
    # well under the 3.5 ms per frame measured on the chip (our mapping moves bits, not charge)
    assert 1e-5 < program.seconds_per_frame(config) < 3.5e-3
    assert program.info["recurrent_white"] == 2.0  # 50 * 2 = 100 stays inside +-128


def test_sensor_threshold_is_the_midpoint_below_the_first_passing_sum():
    program = sensor.compile(_random_model("cnn", thresholds=[2.04]), input_white=10)
    # c >= 2.04 <=> c >= 3 <=> 10 c >= 25 (round(2.04 * 10) = 20 would accept c = 2)
    assert program.info["levels"]["cnn"] == [25]


@pytest.mark.parametrize("white", [1, 2, 2.5, 3, 5, 10])
def test_count_levels_pass_exactly_the_counts_that_pass_theta(white):
    counts = np.arange(-50, 51)
    for theta in np.random.default_rng(0).uniform(-20, 20, 200).tolist() + [0.0, 1.0, -1.0, 2.04]:
        level = sensor.levels.count_level(theta, white)
        assert float(level).is_integer()
        np.testing.assert_array_equal(white * counts >= level, counts >= theta, err_msg=f"theta {theta}")
        after_relu = sensor.levels.count_level(theta, white, relu=True)
        assert (after_relu is None) == (theta <= 0)


def test_a_level_outside_the_range_names_the_white_that_fits():
    with pytest.raises(sensor.CompileError, match=r"forget_threshold = 70 is 139 .*; use --recurrent-white 1 or less"):
        sensor.levels.checked_count_level("forget_threshold", 70.0, 2, sensor.Scamp5(), option="--recurrent-white")
    with pytest.raises(sensor.CompileError, match="below 1"):
        sensor.levels.count_level(1.0, 0.5)


def test_unsupported_models_are_refused():
    with pytest.raises(sensor.CompileError, match="'convlstm'"):
        sensor.compile(pixelrnn_tf.build_model(arch="convlstm"))
    with pytest.raises(sensor.CompileError, match="full precision"):
        sensor.compile(pixelrnn_tf.build_model(binary=False))
    tables = pixelrnn_tf.in_pixel_tables(_random_model("cnn"))
    with pytest.raises(sensor.CompileError, match=r"\+-1"):
        sensor.compile_tables(dataclasses.replace(tables, cnn_kernels=(np.zeros((5, 5, 1, 16)),)))


def test_a_program_calibrated_for_the_drift_cancels_it():
    """Drift alone (the deterministic part of the SCAMP-5 preset) moves the exact program's
    readouts by several model units; the program calibrated for it reads out what the Keras
    model does, up to the per-row averaging of the pre-emphasis."""
    model = _random_model("pixelrnn", thresholds=[1.5])
    clips = _clips()
    expected = pixelrnn_tf.sensor_model(model)(clips).numpy()
    preset = sensor.scamp5_noise()
    drift = sensor.NoiseModel(drift_offset=preset.drift_offset, drift_gain=preset.drift_gain)
    exact = sensor.Emulator(sensor.compile(model, input_white=5), noise=drift).run(clips)
    calibrated_program = sensor.compile(model, input_white=5, drift=drift)
    calibrated = sensor.Emulator(calibrated_program, noise=drift).run(clips)
    assert np.mean(exact.readouts - expected) < -3.0
    error = calibrated.readouts - expected
    assert np.abs(error).mean() < 0.2 and np.mean(np.abs(error) < 0.5) > 0.98
    assert calibrated_program.info["calibrated_for_drift"]
    # calibration is for a noise model with drift; without one the program is the exact one
    assert str(sensor.compile(model, input_white=5, drift="none")) == str(sensor.compile(model, input_white=5))
