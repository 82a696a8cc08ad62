"""Model builder, serialisation, training with model.fit, accounting (Table 2) and bad input."""

import numpy as np
import pytest

import pixelrnn_tf
from pixelrnn_tf import cells, decoders, encoders, quantizers, readout
from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError, ModelConfig
from sensor import Scamp5

ARCHS = ["pixelrnn", "convlstm", "convgru", "mgu", "srnn", "raw", "diff"]

# So et al., CVPR 2024, Table 2: in-pixel parameters with a 1-layer / 2-layer CNN, and values read
# out per 16 frames.
TABLE_2 = {
    "srnn": (451, 852, 4096),
    "convlstm": (601, 1002, 4096),
    "convgru": (551, 952, 4096),
    "mgu": (501, 902, 4096),
    "pixelrnn": (501, 902, 4096),
    "raw": (0, 0, 1_048_576),
    "diff": (0, 0, 65_536),
}


@pytest.mark.parametrize("arch", ARCHS)
def test_table_2_parameters_and_readout(arch):
    one, two, values = TABLE_2[arch]
    for layers, params in ((1, one), (2, two)):
        figures = pixelrnn_tf.account(pixelrnn_tf.build_model(arch=arch, cnn_layers=layers), Scamp5())
        assert figures.in_pixel_parameters == params
        assert figures.readout_values_per_window == values
        assert figures.fits_sensor, figures.reasons


def test_accounting_memory_and_fit():
    binary = pixelrnn_tf.account(pixelrnn_tf.build_model(), Scamp5())
    # state h (1 bit) + the 16 analog (8-bit) conv outputs of a macropixel
    assert binary.memory_bits_per_pixel == 1 + 16 * 8
    assert binary.bandwidth_reduction_vs_raw == 256
    full = pixelrnn_tf.account(pixelrnn_tf.build_model(binary=False), Scamp5())
    assert full.memory_bits_per_pixel == 32 + 16 * 32
    assert not full.fits_sensor and "256" in full.reasons[0]
    pooled = pixelrnn_tf.account(pixelrnn_tf.build_model(readout_pool=4), Scamp5())
    assert pooled.readout_values_per_window == 16 * 16


def test_accounting_reads_the_array_not_constants():
    """Another array is another ArrayConfig: its analog bits, feature storage and size decide."""
    model = pixelrnn_tf.build_model()
    small = pixelrnn_tf.account(model, Scamp5(name="4-bit", analog_bits=4, feature_bits_per_macropixel=64))
    assert small.memory_bits_per_pixel == 1 + 16 * 4
    assert not small.fits_sensor and small.reasons[0].startswith("needs 65 bits of features per 4x4 macropixel; 4-bit has 64")
    raw = pixelrnn_tf.account(pixelrnn_tf.build_model(arch="raw"), Scamp5(height=512, width=512))
    assert raw.readout_values_per_window == 512 * 512 * 16  # the whole array, every frame
    tiny = pixelrnn_tf.account(model, Scamp5(height=128, width=128))
    assert not tiny.fits_sensor and "64x64 working grid needs more than the 32x32 macropixels" in tiny.reasons[0]


def _clips(rng, n=2, frames=16, size=64):
    return rng.standard_normal((n, frames, size, size, 1)).astype("float32")


MODEL_VARIANTS = [dict(arch=a) for a in ARCHS] + [
    dict(arch="pixelrnn", binary=False),
    dict(arch="convlstm", binary=False, cnn_layers=2),
    dict(arch="pixelrnn", cnn_layers=2, decoder="reference", zero_point=True, learned_input_threshold=True),
    dict(arch="pixelrnn", forget_threshold=True, output_threshold=1.5, readout_pool=2),
    dict(arch="pixelrnn", rnn_input_pool=3, readout_pool=5),
    dict(arch="mgu", cnn_layers=2, cnn_batchnorm=True),
]


@pytest.mark.slow
@pytest.mark.parametrize("variant", MODEL_VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v))
def test_model_round_trips_through_keras_file(variant, tmp_path, rng):
    model = pixelrnn_tf.build_model(**variant)
    clips = _clips(rng)
    before = model(clips).numpy()
    path = tmp_path / "model.keras"
    model.save(path)
    restored = pixelrnn_tf.load_model(path)
    np.testing.assert_array_equal(restored(clips).numpy(), before)
    assert pixelrnn_tf.account(restored, Scamp5()) == pixelrnn_tf.account(model, Scamp5())


def _layer_cases():
    return [
        (encoders.InPixelCNN(num_layers=2, zero_point=True, noise_stddev=0.5), (1, 2, 64, 64, 1)),
        (encoders.InPixelCNN(binary=False), (1, 2, 64, 64, 1)),
        (encoders.InPixelCNN(num_layers=2, batchnorm=True), (1, 2, 64, 64, 1)),
        (readout.InPixelRecurrence(cells.PixelRNNCell(height=16, width=16, output_threshold=1.0), window=2), (1, 4, 16, 16, 1)),
        (readout.InPixelRecurrence(cells.ConvLSTMCell(height=16, width=16, zero_point=True), window=2), (1, 4, 16, 16, 1)),
        (readout.InPixelRecurrence(cells.ConvGRUCell(height=16, width=16, binary=False), window=2), (1, 4, 16, 16, 1)),
        (readout.InPixelRecurrence(cells.MGUCell(height=16, width=16), window=2), (1, 4, 16, 16, 1)),
        (readout.InPixelRecurrence(cells.SimpleRNNCell(height=16, width=16), window=2), (1, 4, 16, 16, 1)),
        (readout.InPixelRecurrence(cells.DifferenceCameraCell(height=16, width=16), window=2), (1, 4, 16, 16, 1)),
        (readout.InPixelRecurrence(cells.RawCameraCell(height=16, width=16), window=2), (1, 4, 16, 16, 1)),
        (readout.SensorReadout(pool_size=4, noise_stddev=1.0), (1, 2, 16, 16, 1)),
        (readout.FramePool(pool_size=3), (1, 2, 16, 16, 1)),
        (decoders.LinearDecoder(4), (2, 2, 16, 16, 1)),
        (decoders.ReferenceDecoder(4), (2, 1, 16, 16, 1)),
    ]


@pytest.mark.parametrize("layer,shape", _layer_cases(), ids=lambda c: getattr(c, "name", str(c)))
def test_layer_round_trips_through_get_config(layer, shape, rng):
    x = rng.standard_normal(shape).astype("float32")
    before = layer(x).numpy()
    config = tf.keras.layers.serialize(layer)
    clone = tf.keras.layers.deserialize(config)
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(x).numpy(), before)
    assert tf.keras.layers.serialize(clone)["config"] == config["config"]


def _floor_max_pool(planes, pool):
    """Numpy oracle: max over non-overlapping pool x pool blocks of (..., H, W, C), dropping the
    H mod pool last rows and columns."""
    h, w = planes.shape[-3] // pool, planes.shape[-2] // pool
    cut = planes[..., : h * pool, : w * pool, :]
    blocks = cut.reshape(cut.shape[:-3] + (h, pool, w, pool, cut.shape[-1]))
    return blocks.max(axis=(-4, -2))


@pytest.mark.parametrize("pool", [3, 7, 24])
def test_readout_pool_is_floor_max_pooling_of_the_unpooled_readout(pool, rng):
    unpooled = pixelrnn_tf.build_model(arch="pixelrnn", frames=4, window=2)
    pooled = pixelrnn_tf.build_model(arch="pixelrnn", frames=4, window=2, readout_pool=pool)
    for name in ("in_pixel_cnn", "recurrence"):
        pooled.get_layer(name).set_weights(unpooled.get_layer(name).get_weights())
    clips = _clips(rng, frames=4)
    expected = _floor_max_pool(pixelrnn_tf.sensor_model(unpooled)(clips).numpy(), pool)
    np.testing.assert_array_equal(pixelrnn_tf.sensor_model(pooled)(clips).numpy(), expected)
    assert pixelrnn_tf.account(pooled, Scamp5()).readout_values_per_window == (64 // pool) ** 2


def test_rnn_input_pool_pools_the_cnn_output_before_the_cell(rng):
    """The CNN-only cell reads out the window's last frame, so pooling before it equals pooling its
    readout; a recurrent cell then runs on the smaller plane."""
    plain = pixelrnn_tf.build_model(arch="cnn", frames=4, window=2)
    before_cell = pixelrnn_tf.build_model(arch="cnn", frames=4, window=2, rnn_input_pool=3)
    encoder_weights = plain.get_layer("in_pixel_cnn").get_weights()
    before_cell.get_layer("in_pixel_cnn").set_weights(encoder_weights)
    clips = _clips(rng, frames=4)
    expected = _floor_max_pool(pixelrnn_tf.sensor_model(plain)(clips).numpy(), 3)
    np.testing.assert_array_equal(pixelrnn_tf.sensor_model(before_cell)(clips).numpy(), expected)
    recurrent = pixelrnn_tf.build_model(arch="pixelrnn", rnn_input_pool=3)
    assert recurrent.get_layer("recurrence").cell.height == 21
    assert pixelrnn_tf.account(recurrent, Scamp5()).readout_values_per_window == 21 * 21


def test_noise_only_in_training_unless_asked(rng):
    clips = _clips(rng)
    quiet = pixelrnn_tf.build_model(cnn_noise_stddev=0.6, gate_noise_stddev=0.6, readout_noise_stddev=1.0)
    np.testing.assert_array_equal(quiet(clips, training=False).numpy(), quiet(clips, training=False).numpy())
    sensor = pixelrnn_tf.sensor_model(quiet)
    assert not np.array_equal(sensor(clips, training=True).numpy(), sensor(clips, training=True).numpy())
    noisy = pixelrnn_tf.sensor_model(pixelrnn_tf.build_model(readout_noise_stddev=1.0, noise_at_inference=True))
    a, b = noisy(clips).numpy(), noisy(clips).numpy()
    assert 0.8 < np.std(a - b) / np.sqrt(2) < 1.2  # two independent N(0, 1) draws


def _bright_third_task(model, rng):
    """48 clips (8 frames, 16x16) of a learnable task, the class says which third of the frame is
    brighter; compiles `model` for it."""
    labels = rng.integers(0, 3, 48)
    clips = rng.standard_normal((48, 8, 16, 16, 1)).astype("float32")
    for i, label in enumerate(labels):
        clips[i, :, :, 5 * label : 5 * label + 6] += 1.5
    model.compile(tf.keras.optimizers.Adam(0.02), tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return clips, labels


@pytest.mark.slow
@pytest.mark.parametrize("zero_point", [False, True])
def test_tiny_model_trains_and_binary_weights_flip_sign(zero_point, rng):
    tf.keras.utils.set_random_seed(7)
    model = pixelrnn_tf.build_model(
        frames=8, window=4, height=16, width=16, num_classes=3, zero_point=zero_point
    )
    cnn, cell = model.get_layer("in_pixel_cnn"), model.get_layer("recurrence").cell
    signs_before = [np.sign(cnn.kernels[0].numpy())] + [np.sign(v.numpy()) for v in cell.latent_kernels.values()]
    clips, labels = _bright_third_task(model, rng)
    history = model.fit(clips, labels, epochs=6, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    signs_after = [np.sign(cnn.kernels[0].numpy())] + [np.sign(v.numpy()) for v in cell.latent_kernels.values()]
    flipped = sum(int((a != b).sum()) for a, b in zip(signs_before, signs_after))
    assert flipped > 0, "no binary weight changed sign during training"
    for var in [cnn.kernels[0], *cell.latent_kernels.values()]:
        assert np.abs(var.numpy()).max() <= 1.0  # latent weights stay clipped
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_batchnorm_encoder_trains_with_fit_its_statistics_and_per_channel_thresholds(rng):
    """cnn_batchnorm: model.fit updates BatchNorm's moving statistics and the 16 thresholds of each
    layer separately; the sensor's parameters are the kernels plus 16 levels per layer."""
    tf.keras.utils.set_random_seed(7)
    model = pixelrnn_tf.build_model(frames=8, window=4, height=16, width=16, num_classes=3, cnn_batchnorm=True)
    cnn = model.get_layer("in_pixel_cnn")
    assert cnn.thresholds[0].shape == (16,) and cnn.in_pixel_parameters() == 400 + 16
    clips, labels = _bright_third_task(model, rng)
    history = model.fit(clips, labels, epochs=4, batch_size=8, verbose=0)
    norm = cnn.batchnorm_layers[0]
    assert np.abs(norm.moving_mean.numpy()).max() > 0.1 and np.abs(norm.moving_variance.numpy() - 1).max() > 0.1
    theta = cnn.thresholds[0].numpy()
    assert np.unique(np.round(theta, 6)).size > 1  # the channels' thresholds moved apart
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_wrong_clip_shape_is_a_clear_error(rng):
    model = pixelrnn_tf.build_model()
    # Keras' own input check names the expected and the found shape
    with pytest.raises(ValueError, match=r"expected shape=\(None, None, 64, 64, 1\), found shape=\(2, 16, 32, 32, 1\)"):
        model(_clips(rng, size=32))
    with pytest.raises(ValueError, match="T=12, which is not a multiple of K=16"):
        model(_clips(rng, frames=12))
    layer = readout.InPixelRecurrence(cells.PixelRNNCell(), window=16)
    with pytest.raises(ValueError, match="rank-5"):
        layer(rng.standard_normal((2, 16, 64, 64)).astype("float32"))
    with pytest.raises(ValueError, match=r"\(batch, T, 64, 64, 1\).*32x32"):
        layer(_clips(rng, size=32))


def test_longer_clips_average_over_windows(rng):
    model = pixelrnn_tf.build_model()
    clips = _clips(rng, n=1, frames=32)
    two_windows = model(clips).numpy()
    halves = (model(clips[:, :16]).numpy() + model(clips[:, 16:]).numpy()) / 2
    np.testing.assert_allclose(two_windows, halves, rtol=1e-5, atol=1e-5)


def test_pools_larger_than_the_plane_are_config_errors():
    with pytest.raises(ConfigError, match="readout_pool 65 is larger than the 64x64 readout plane"):
        ModelConfig(readout_pool=65)
    with pytest.raises(ConfigError, match="readout_pool 22 is larger than the 21x21 readout plane"):
        ModelConfig(rnn_input_pool=3, readout_pool=22)


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="multiple of window"):
        ModelConfig(frames=20, window=16)
    with pytest.raises(ConfigError, match="Unknown arch 'pixelrn'.*Did you mean 'pixelrnn'"):
        pixelrnn_tf.build_model(arch="pixelrn")
    with pytest.raises(ConfigError, match="'readout_poll' \\(did you mean 'readout_pool'\\?\\)"):
        ModelConfig.from_dict({"readout_poll": 2})
    with pytest.raises(ConfigError, match="must be >= 0"):
        ModelConfig(gate_noise_stddev=-1)
    with pytest.raises(ConfigError, match="Unknown kernel_quantizer"):
        ModelConfig(kernel_quantizer="sign")


def test_config_round_trips_through_json():
    config = ModelConfig(arch="mgu", cnn_layers=2, kernel_quantizer={"name": "tanh_sign", "m": 3.0})
    import json

    assert ModelConfig.from_dict(json.loads(config.to_json())) == config
    model = pixelrnn_tf.build_model(config)
    assert model.get_layer("in_pixel_cnn").kernel_quantizer.m == 3.0


def test_larq_summary_reads_the_model(capsys):
    import larq as lq

    lq.models.summary(pixelrnn_tf.build_model(), print_fn=print)
    out = capsys.readouterr().out
    assert "in_pixel_cnn" in out and "recurrence" in out and "Total" in out


def test_quantizer_registry_is_complete():
    assert {"tanh_sign", "ste_sign", "stochastic_sign", "sigmoid_step", "ste_ternary", "gumbel_binary", "gumbel_ternary"} <= set(
        quantizers.QUANTIZERS
    )


def test_raw_camera_cells_saved_with_their_array_size_still_load():
    """Models saved before the array became an argument of `account` stored its size in the cell."""
    config = cells.RawCameraCell().get_config()
    cell = cells.RawCameraCell.from_config({**config, "sensor_height": 256, "sensor_width": 256})
    assert cell.get_config() == config
