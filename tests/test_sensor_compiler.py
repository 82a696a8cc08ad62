"""sensor.compile: the emulated program equals the Keras model's readouts exactly (noise off)."""

import dataclasses

import numpy as np
import pytest

import pixelrnn_tf
import sensor
from pixelrnn_tf._keras import tf


def _random_model(arch, cnn_layers=1, seed=0, readout_pool=1, thresholds=None, **options):
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    extra = {"forget_threshold": True} if arch == "pixelrnn" else {}
    camera = arch in ("raw", "diff")
    model = pixelrnn_tf.build_model(
        arch=arch, cnn_layers=cnn_layers, frames=4, window=2, learned_input_threshold=not camera, readout_pool=readout_pool,
        **{**extra, **options},
    )
    if options.get("kernel_quantizer") == "ste_ternary":  # latent weights across the dead zone: about 1/2 of them 0
        for variable in model.trainable_variables:
            if "kernel" in variable.name and variable.shape.rank == 4:
                variable.assign(rng.uniform(-1, 1, variable.shape))
    if not camera:
        encoder = model.get_layer("in_pixel_cnn")
        for layer, threshold in enumerate(encoder.thresholds):
            # fractional thresholds, including ones just above an integer and <= 0 (relu makes q = +1)
            threshold.assign(thresholds[layer] if thresholds else rng.uniform(-0.5, 4.0, threshold.shape))
        for norm in encoder.batchnorm_layers:  # scales of both signs: some channels flip
            _random_batchnorm(norm, rng)
        encoder.input_threshold.assign(rng.uniform(-0.3, 0.3))
    if arch == "pixelrnn":
        model.get_layer("recurrence").cell.theta.assign(rng.uniform(-3, 3))
    return model


def _random_batchnorm(norm, rng):
    channels = norm.gamma.shape[0]
    norm.gamma.assign(rng.choice([-1, 1], channels) * rng.uniform(0.3, 1.5, channels))
    norm.beta.assign(rng.uniform(-1, 1, channels))
    norm.moving_mean.assign(rng.uniform(-6, 6, channels))
    norm.moving_variance.assign(rng.uniform(4, 30, channels))


def _clips(seed=1):
    return np.random.default_rng(seed).standard_normal((2, 4, 64, 64, 1)).astype("float32")


TERNARY = {"kernel_quantizer": "ste_ternary"}
# Every arch once, and every path of the compiler: 1 and 2 CNN layers, binary and ternary
# kernels (0 taps), the gated hidden plane (GRU's r . h, MGU's f . h), the LSTM's analog memory,
# the ternary PixelRNN output, readout pooling, and the cameras' per-frame readouts.
EVERY_MODEL = [
    ("pixelrnn", 1, 1, [1.02], {}),
    ("pixelrnn", 1, 3, None, {}),
    ("pixelrnn", 1, 1, None, {"output_threshold": 1.5}),
    ("pixelrnn", 2, 1, None, TERNARY),
    ("convlstm", 2, 2, None, {}),
    ("convgru", 1, 1, None, TERNARY),
    ("mgu", 2, 1, None, {}),
    ("srnn", 1, 2, [-0.2], {}),
    ("cnn", 2, 1, None, TERNARY),
    ("pixelrnn", 2, 1, None, {"cnn_batchnorm": True}),
    ("raw", 1, 1, None, {}),
    ("raw", 1, 2, None, {}),
    ("diff", 1, 1, None, {}),
    ("diff", 1, 2, None, {"diff_threshold": 0.35}),
]


def _model_id(case):
    arch, layers, pool, _, options = case
    return f"{arch}-{layers}layer-pool{pool}" + "".join(f"-{k}={v}" for k, v in options.items())


@pytest.mark.parametrize("arch, cnn_layers, readout_pool, thresholds, options", EVERY_MODEL, ids=map(_model_id, EVERY_MODEL))
def test_emulator_equals_the_keras_model_exactly(arch, cnn_layers, readout_pool, thresholds, options):
    """input_white 5 keeps every CNN sum (|c| <= 25) inside the range, so exact equality is due."""
    model = _random_model(arch, cnn_layers, readout_pool=readout_pool, thresholds=thresholds, **options)
    if options == TERNARY:
        tables = pixelrnn_tf.in_pixel_tables(model)
        assert 0.3 < np.mean(tables.cnn_kernels[-1] == 0) < 0.7  # the ternary zeros are exercised
    clips = _clips()
    expected = pixelrnn_tf.sensor_model(model)(clips).numpy()
    # the archs mapped first also run the fused XLA kernels; the others run the same kernels as
    # plain ops (test_sensor_kernels checks that both agree), which traces faster
    jit = arch in ("pixelrnn", "srnn", "cnn") and not options
    result = sensor.Emulator(sensor.compile(model, input_white=5), jit=jit).run(clips)
    if arch == "diff" or "output_threshold" in options:  # the dead zone and both signs are exercised
        assert set(np.unique(expected)) == {-1.0, 0.0, 1.0}
    # folded BatchNorm levels reach far below 0: acc - level may clip, which keeps its sign
    assert result.saturated == 0 or "cnn_batchnorm" in options
    assert result.readouts.shape == expected.shape
    np.testing.assert_array_equal(result.readouts, expected)


def test_a_cell_that_runs_out_of_registers_names_the_register_kind_and_the_stage():
    """The LSTM step holds i, f, o, g, h and x as bits at once; with 8 digital registers the
    allocator runs out in the recurrent stage (SCAMP-5 has 13)."""
    program = sensor.compile(_random_model("convlstm"))
    program.allocate(sensor.Scamp5())
    with pytest.raises(sensor.RegisterError, match=r"frame step \d+ \(stage rnn\): .* needs a digital register .* all 8 free"):
        program.allocate(sensor.Scamp5(digital_registers=tuple(f"R{i}" for i in range(8))))


def test_lstm_memory_beyond_the_analog_range_is_refused_with_the_white_that_fits():
    model = pixelrnn_tf.build_model(arch="convlstm", frames=64, window=64)
    with pytest.raises(sensor.CompileError, match=r"K = 64 units of 2, beyond .*use --recurrent-white 1 or less"):
        sensor.compile(model)
    assert sensor.compile(model, recurrent_white=1).info["recurrent_white"] == 1.0


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
    with pytest.raises(sensor.CompileError, match="full precision"):
        sensor.compile(pixelrnn_tf.build_model(binary=False))
    tables = pixelrnn_tf.in_pixel_tables(_random_model("cnn"))
    with pytest.raises(sensor.CompileError, match=r"\+-1 .* or -1, 0, \+1 \(ternary\)"):
        sensor.compile_tables(dataclasses.replace(tables, cnn_kernels=(np.full((5, 5, 1, 16), 0.5),)))


def _under_drift(model):
    """(clips, the Keras readouts, the SCAMP-5 preset's drift alone, the exact program's result under it)."""
    clips = _clips()
    preset = sensor.scamp5_noise()
    drift = sensor.NoiseModel(drift_offset=preset.drift_offset, drift_gain=preset.drift_gain)
    exact = sensor.Emulator(sensor.compile(model, input_white=5), noise=drift).run(clips)
    return clips, pixelrnn_tf.sensor_model(model)(clips).numpy(), drift, exact


def test_a_program_calibrated_for_the_drift_cancels_it():
    """Drift alone (the deterministic part of the SCAMP-5 preset) moves the exact program's
    readouts by several model units; the program calibrated for it reads out what the Keras
    model does, up to the per-row averaging of the pre-emphasis."""
    model = _random_model("pixelrnn", thresholds=[1.5])
    clips, expected, drift, exact = _under_drift(model)
    calibrated_program = sensor.compile(model, input_white=5, drift=drift)
    calibrated = sensor.Emulator(calibrated_program, noise=drift).run(clips)
    assert np.mean(exact.readouts - expected) < -3.0
    error = calibrated.readouts - expected
    assert np.abs(error).mean() < 0.2 and np.mean(np.abs(error) < 0.5) > 0.98
    assert calibrated_program.info["calibrated_for_drift"]
    # calibration is for a noise model with drift; without one the program is the exact one
    assert str(sensor.compile(model, input_white=5, drift="none")) == str(sensor.compile(model, input_white=5))


def test_the_lstm_memory_calibrated_for_the_drift_keeps_its_sign():
    """The memory c drifts by the offset of its two writes per frame; sign(c) at c = 0 then
    flips. The calibrated program gives every pixel the same writes and cancels their offset, so
    with drift alone it reads out what the Keras model does."""
    model = _random_model("convlstm", thresholds=[1.5])
    clips, expected, drift, exact = _under_drift(model)
    calibrated = sensor.Emulator(sensor.compile(model, input_white=5, drift=drift), noise=drift).run(clips)
    assert np.mean(exact.readouts == expected) < 0.9
    np.testing.assert_array_equal(calibrated.readouts, expected)


def test_batchnorm_folds_into_one_level_and_a_sign_per_channel_exactly():
    """For every count a 5x5 binary kernel can sum, the folded test (s_k c >= first_k) passes
    exactly where the BatchNorm formula (numpy, float64) followed by the ReLU and the channel's
    threshold does; negative scales flip the channel, and channels that always or never pass are
    kept as such."""
    rng = np.random.default_rng(3)
    model = pixelrnn_tf.build_model(arch="cnn", frames=2, window=2, cnn_batchnorm=True)
    encoder = model.get_layer("in_pixel_cnn")
    norm = encoder.batchnorm_layers[0]
    _random_batchnorm(norm, rng)
    theta = rng.uniform(-0.5, 2.0, 16)
    theta[3], theta[5] = -0.2, 1e3  # channel 3 always passes (after the ReLU), channel 5 never
    encoder.thresholds[0].assign(theta)
    signs, first = pixelrnn_tf.encoders.fold_batchnorm(encoder, 0)
    c = np.arange(-25, 26, dtype=np.float64)[:, None]
    gamma, beta, mean, var = (np.asarray(v, np.float64) for v in (norm.gamma, norm.beta, norm.moving_mean, norm.moving_variance))
    y = gamma * (c - mean) / np.sqrt(var + norm.epsilon) + beta
    expected = np.maximum(y, 0.0) >= theta
    np.testing.assert_array_equal(signs * c >= first, expected)
    assert set(signs) == {-1.0, 1.0}
    assert first[3] == -np.inf and first[5] == np.inf and np.isfinite(first).sum() >= 10
