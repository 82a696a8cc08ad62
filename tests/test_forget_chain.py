"""PixelRNN's window fast path (pixelrnn_tf.forget_chain) against independent references: the
block layout against a numpy cross-correlation, the hand-written gradient against TensorFlow's
automatic gradient of the step-by-step loop that the other cells run."""

import numpy as np
import pytest
from conftest import np_sign, xcorr_same

from pixelrnn_tf import cells
from pixelrnn_tf._keras import tf
from pixelrnn_tf.forget_chain import BlockLayout, forget_chain


@pytest.mark.parametrize("kernel_size, block", [(3, 2), (5, 2), (5, 4), (7, 2)])
def test_block_kernel_convolves_like_the_pixel_kernel(kernel_size, block, rng):
    size, channels = 4 * block, 3
    x = rng.standard_normal((2, size, size, channels)).astype("float32")
    kernel = rng.standard_normal((kernel_size, kernel_size, channels, 1)).astype("float32")
    layout = BlockLayout(block, kernel_size)
    blocked = tf.nn.conv2d(layout.planes(tf.constant(x)), layout.kernel(tf.constant(kernel)), 1, "SAME")
    out = layout.pixels(blocked).numpy()[..., 0]
    expected = [sum(xcorr_same(x[n, :, :, c], kernel[:, :, c, 0]) for c in range(channels)) for n in range(2)]
    np.testing.assert_allclose(out, np.stack(expected), rtol=1e-5, atol=1e-4)


def _window_and_gradients(cell, x, weights, fast):
    x = tf.constant(x)
    variables = cell.trainable_variables
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = cell.run_window(x, True) if fast else cells.InPixelCell.run_window(cell, x, True)
        loss = tf.reduce_sum(out * weights)
    gradients = tape.gradient(loss, variables + [x], unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return out.numpy(), [g.numpy() for g in gradients]


@pytest.mark.parametrize(
    "options, size, window",
    [
        (dict(), 12, 4),
        (dict(zero_point=True, forget_threshold=True), 12, 4),
        (dict(output_threshold=0.5), 12, 4),
        (dict(binary=False), 12, 4),
        (dict(kernel_quantizer="ste_sign", activation_quantizer="ste_sign"), 12, 4),
        (dict(), 13, 4),  # odd planes: no 2x2 blocks
        (dict(), 12, 2),
        (dict(), 12, 1),
    ],
    ids=["binary", "zero-point+threshold", "ternary-output", "float", "ste", "odd-size", "K2", "K1"],
)
def test_window_fast_path_equals_the_step_loop(options, size, window, rng):
    cell = cells.PixelRNNCell(height=size, width=size, **options)
    cell.build((None, size, size, 1))
    if options.get("forget_threshold"):
        cell.theta_layer.value.assign(1.0)
    if options.get("zero_point"):
        for layer in cell.zero_point_layers.values():
            layer.value.assign(0.1)
    x = np_sign(rng.standard_normal((3, window, size, size, 1))).astype("float32")
    weights = tf.constant(rng.standard_normal((3, size, size, 1)).astype("float32"))
    loop_out, loop_grads = _window_and_gradients(cell, x, weights, fast=False)
    fast_out, fast_grads = _window_and_gradients(cell, x, weights, fast=True)
    if cell.binary:
        np.testing.assert_array_equal(fast_out, loop_out)  # the same integer sums
    else:
        np.testing.assert_allclose(fast_out, loop_out, rtol=1e-5, atol=1e-6)
    for fast, loop in zip(fast_grads, loop_grads):
        # binary chains multiply surrogate slopes over the steps: compare at the gradient's scale
        np.testing.assert_allclose(fast, loop, rtol=1e-4, atol=1e-5 * np.abs(loop).max())


@pytest.mark.parametrize("activation", [tf.sigmoid, cells.quantizers.TanhSign()], ids=["sigmoid", "tanh_sign"])
def test_forget_chain_adds_noise_before_the_threshold_and_passes_its_gradient(activation, rng):
    """A deterministic stand-in for the noise (a fixed plane per step) makes the chain comparable
    with an autograd loop of q_t = noise(w * x_t + u * h_t) - theta, h_{t+1} = psi(q_t) h_t."""
    steps, n, size = 3, 2, 8
    frames = tf.constant(rng.standard_normal((steps * n, size, size, 1)).astype("float32"))
    w = tf.constant(0.3 * rng.standard_normal((5, 5, 1, 1)).astype("float32"))
    u = tf.constant(0.3 * rng.standard_normal((5, 5, 1, 1)).astype("float32"))
    theta = tf.constant(0.2)
    offsets = [tf.constant(rng.standard_normal((n, size, size, 1)).astype("float32")) for _ in range(steps)]
    weights = tf.constant(rng.standard_normal((n, size, size, 1)).astype("float32"))

    def noise_in_order():
        calls = iter(offsets)
        return lambda q: q + next(calls)

    def reference(frames, w, u, theta):
        h = tf.ones((n, size, size, 1))
        for t, x_t in enumerate(tf.split(frames, steps)):
            q = tf.nn.conv2d(x_t, w, 1, "SAME") + tf.nn.conv2d(h, u, 1, "SAME") + offsets[t] - theta
            h = activation(q) * h
        return h

    chain = lambda *a: forget_chain(*a, steps, activation, noise_in_order())  # noqa: E731
    results = []
    for run in (reference, chain):
        with tf.GradientTape() as tape:
            tape.watch([frames, w, u, theta])
            loss = tf.reduce_sum(run(frames, w, u, theta) * weights)
        results.append([loss.numpy()] + [g.numpy() for g in tape.gradient(loss, [frames, w, u, theta])])
    for fast, slow in zip(results[1], results[0]):
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5 * np.abs(slow).max())
