"""Each cell's step against a numpy implementation of the paper's equations, plus the encoder,
tiling order and readout windows against hand-built references."""

import numpy as np
import pytest
from conftest import np_sign, xcorr_same

from pixelrnn_tf import cells, encoders
from pixelrnn_tf._keras import tf
from pixelrnn_tf.readout import InPixelRecurrence

H = W = 12
BATCH = 2


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _make_cell(cls, binary, **kwargs):
    cell = cls(height=H, width=W, binary=binary, **kwargs)
    cell.build((None, H, W, 1))
    return cell


def _kernels(cell):
    """The kernels the oracle uses: sign of the latent weights (binary) or the weights themselves."""
    out = {}
    for name, var in cell.latent_kernels.items():
        k = var.numpy()[:, :, 0, 0].astype(np.float64)
        out[name] = np_sign(k) if cell.binary else k
    return out


def _conv(x, k):
    return np.stack([xcorr_same(x[b, :, :, 0], k) for b in range(x.shape[0])])[..., None]


def np_pixelrnn(k, x, h, binary, theta=0.0):
    f_pre = _conv(x, k["w_f"]) + _conv(h, k["u_f"]) - theta
    f = np_sign(f_pre) if binary else sigmoid(f_pre)
    o = _conv(x, k["w_o"]) + _conv(h, k["u_o"])
    return o, [f * h]


def np_convlstm(k, x, state, binary):
    h, c = state
    s = np_sign if binary else sigmoid
    t = np_sign if binary else np.tanh
    gate = lambda g: _conv(x, k[f"w_{g}"]) + _conv(h, k[f"u_{g}"])  # noqa: E731
    i, f, o, g = s(gate("i")), s(gate("f")), s(gate("o")), t(gate("g"))
    c2 = f * c + i * g
    h2 = o * t(c2)
    return h2, [h2, c2]


def np_convgru(k, x, h, binary):
    s = (lambda z: (z >= 0).astype(float)) if binary else sigmoid
    t = np_sign if binary else np.tanh
    z = s(_conv(x, k["w_z"]) + _conv(h, k["u_z"]))
    r = s(_conv(x, k["w_r"]) + _conv(h, k["u_r"]))
    n = t(_conv(x, k["w_n"]) + _conv(r * h, k["u_n"]))
    h2 = (1 - z) * h + z * n
    return h2, [h2]


def np_mgu(k, x, h, binary):
    s = (lambda z: (z >= 0).astype(float)) if binary else sigmoid
    t = np_sign if binary else np.tanh
    f = s(_conv(x, k["w_f"]) + _conv(h, k["u_f"]))
    n = t(_conv(x, k["w_n"]) + _conv(f * h, k["u_n"]))
    h2 = (1 - f) * h + f * n
    return h2, [h2]


def np_srnn(k, x, h, binary):
    t = np_sign if binary else np.tanh
    h2 = t(_conv(x, k["w_h"]) + _conv(h, k["u_h"]))
    return h2, [h2]


CASES = [
    (cells.PixelRNNCell, lambda k, x, s, b: np_pixelrnn(k, x, s[0], b)),
    (cells.ConvLSTMCell, lambda k, x, s, b: np_convlstm(k, x, s, b)),
    (cells.ConvGRUCell, lambda k, x, s, b: np_convgru(k, x, s[0], b)),
    (cells.MGUCell, lambda k, x, s, b: np_mgu(k, x, s[0], b)),
    (cells.SimpleRNNCell, lambda k, x, s, b: np_srnn(k, x, s[0], b)),
]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "float"])
@pytest.mark.parametrize("cls,oracle", CASES, ids=[c[0].__name__ for c in CASES])
def test_cell_step_matches_numpy_equations(cls, oracle, binary, rng):
    cell = _make_cell(cls, binary)
    x = np_sign(rng.standard_normal((BATCH, H, W, 1))) if binary else rng.standard_normal((BATCH, H, W, 1))
    if binary:
        states = [np_sign(rng.standard_normal((BATCH, H, W, 1)))]
    else:
        states = [np.tanh(rng.standard_normal((BATCH, H, W, 1)))]
    if cls is cells.ConvLSTMCell:
        states.append(rng.integers(-3, 4, (BATCH, H, W, 1)).astype(float))
    out, new_states = cell(tf.constant(x, tf.float32), [tf.constant(s, tf.float32) for s in states])
    ref_out, ref_states = oracle(_kernels(cell), x, states, binary)
    tol = dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.numpy(), ref_out, **tol)
    for got, want in zip(new_states, ref_states):
        np.testing.assert_allclose(got.numpy(), want, **tol)
    if binary:  # binary cells keep a +-1 hidden state
        assert set(np.unique(new_states[0].numpy())) <= {-1.0, 1.0}


def test_pixelrnn_forget_threshold_and_ternary_output(rng):
    cell = _make_cell(cells.PixelRNNCell, True, forget_threshold=True, output_threshold=2.5)
    cell.theta.assign(1.5)
    x = np_sign(rng.standard_normal((BATCH, H, W, 1)))
    h = np_sign(rng.standard_normal((BATCH, H, W, 1)))
    out, (h2,) = cell(tf.constant(x, tf.float32), [tf.constant(h, tf.float32)])
    k = _kernels(cell)
    o, (h_ref,) = np_pixelrnn(k, x, h, True, theta=1.5)
    np.testing.assert_array_equal(h2.numpy(), h_ref)
    np.testing.assert_array_equal(out.numpy(), np.where(o > 2.5, 1, np.where(o < -2.5, -1, 0)))
    assert cell.in_pixel_parameters() == 101


def test_difference_camera_is_thresholded_frame_difference(rng):
    frames = rng.standard_normal((BATCH, 8, H, W, 1)).astype("float32")
    cell = cells.DifferenceCameraCell(height=H, width=W, threshold=0.3)
    readout = InPixelRecurrence(cell, window=4)(frames).numpy()  # (B, 2, H, W, 4)
    previous = np.concatenate([np.zeros_like(frames[:, :1]), frames[:, :-1]], axis=1)
    previous[:, 4] = 0  # the state is reset at the start of each window
    diff = frames - previous
    expected = np.where(diff > 0.3, 1, np.where(diff < -0.3, -1, 0))[..., 0]  # (B, 8, H, W)
    expected = expected.reshape(BATCH, 2, 4, H, W).transpose(0, 1, 3, 4, 2)
    np.testing.assert_array_equal(readout, expected)


def test_pixelrnn_window_reset_and_readout_at_last_frame(rng):
    """Run 2 windows of K=4 through InPixelRecurrence and compare with a numpy loop that resets h
    to +1 at each window and reads o at the window's last frame."""
    cell = cells.PixelRNNCell(height=H, width=W)
    x = np_sign(rng.standard_normal((BATCH, 8, H, W, 1))).astype("float32")
    readout = InPixelRecurrence(cell, window=4)(x).numpy()
    k = _kernels(cell)
    for window in range(2):
        h = np.ones((BATCH, H, W, 1))
        for t in range(4):
            o, (h,) = np_pixelrnn(k, x[:, 4 * window + t], h, True)
        np.testing.assert_array_equal(readout[:, window], o)


def test_raw_camera_reads_every_frame(rng):
    frames = rng.standard_normal((1, 4, H, W, 1)).astype("float32")
    out = InPixelRecurrence(cells.RawCameraCell(height=H, width=W), window=4)(frames).numpy()
    np.testing.assert_array_equal(out[0, 0], frames[0, :, :, :, 0].transpose(1, 2, 0))


def test_tiling_is_column_major_channel_order():
    # channel k holds the constant k: then the tiled image at tile (row r, col c) must be 4c + r
    maps = np.broadcast_to(np.arange(16, dtype="float32"), (1, 16, 16, 16)).copy()
    tiled = encoders.tile_channels(tf.constant(maps), 4).numpy()[0, :, :, 0]
    for Y in range(0, 64, 16):
        for X in range(0, 64, 16):
            assert np.all(tiled[Y : Y + 16, X : X + 16] == 4 * (X // 16) + (Y // 16))
    # and pixel-exact against the reference formula, on random maps, with the inverse
    maps = np.random.default_rng(0).standard_normal((2, 16, 16, 16)).astype("float32")
    tiled = encoders.tile_channels(tf.constant(maps), 4).numpy()
    Y, X = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    np.testing.assert_array_equal(tiled[1, :, :, 0], maps[1, Y % 16, X % 16, 4 * (X // 16) + Y // 16])
    np.testing.assert_array_equal(encoders.untile_channels(tf.constant(tiled), 4).numpy(), maps)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_binary_cnn_matches_numpy_reference(num_layers, rng):
    cnn = encoders.InPixelCNN(num_layers=num_layers)
    clips = rng.standard_normal((1, 2, 64, 64, 1)).astype("float32")
    out = cnn(clips).numpy()
    for t in range(2):
        x = np_sign(clips[0, t, :, :, 0])
        for layer in range(num_layers):
            kernels = np_sign(cnn.kernels[layer].numpy())
            theta = cnn.thresholds[layer].numpy()
            maps = np.zeros((16, 16, 16))
            for k in range(16):
                c = np.maximum(xcorr_same(x, kernels[:, :, 0, k]), 0)
                maps[:, :, k] = c.reshape(16, 4, 16, 4).max(axis=(1, 3))
            q = np_sign(maps - theta)
            Y, X = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
            x = q[Y % 16, X % 16, 4 * (X // 16) + Y // 16]
        np.testing.assert_array_equal(out[0, t, :, :, 0], x)


def test_cnn_only_reads_the_last_frame_of_each_window(rng):
    x = rng.standard_normal((1, 8, H, W, 1)).astype("float32")
    out = InPixelRecurrence(cells.CNNOnlyCell(height=H, width=W), window=4)(x).numpy()
    np.testing.assert_array_equal(out[0, :, :, :, 0], x[0, [3, 7], :, :, 0])


def test_pixelrnn_contains_the_difference_camera(rng):
    """With h reset to +1, w_f = delta and u_f = 0 give f_0 = x_0, so h_1 = x_0; with w_o = delta,
    u_o = -delta and a ternary output, the readout of a K = 2 window is ternary(x_1 - x_0): the
    difference camera. Ternary kernels express delta and 0 exactly. Checked against
    DifferenceCameraCell and against the hand formula."""
    delta = np.zeros((5, 5, 1, 1), "float32")
    delta[2, 2] = 1.0
    cell = cells.PixelRNNCell(height=H, width=W, kernel_quantizer="ste_ternary", output_threshold=0.5)
    cell.build((None, H, W, 1))
    for name, kernel in {"w_f": delta, "u_f": 0 * delta, "w_o": delta, "u_o": -delta}.items():
        cell.latent_kernels[name].assign(kernel)
    x = np_sign(rng.standard_normal((BATCH, 4, H, W, 1))).astype("float32")
    readout = InPixelRecurrence(cell, window=2)(x).numpy()
    expected = np.sign(x[:, 1::2] - x[:, 0::2])  # x in {-1, 1}: differences are 0 or +-2
    np.testing.assert_array_equal(readout, expected)
    difference = InPixelRecurrence(cells.DifferenceCameraCell(height=H, width=W, threshold=0.5), window=2)(x).numpy()
    np.testing.assert_array_equal(readout[..., 0], difference[..., 1])
