"""PixelRNN's window as a few large operations: the training fast path of `PixelRNNCell`.

Over one window the PixelRNN state is a chain of sign flips (So et al. 2024, Eqs. 3-5):

    q_t     = w_f * x_t + u_f * h_t + n_t - theta       t = 0 .. K-2
    h_{t+1} = psi_f(q_t) . h_t,   h_0 = 1

and the readout o = psi_o(w_o * x_{K-1} + u_o * h_{K-1}) needs only h_{K-1}. Keras' automatic
gradient of the unrolled steps runs, per step, a convolution's input gradient, its filter
gradient and the concatenation and split around it; on a CPU these small convolutions cost far
more than their arithmetic. `forget_chain` writes that gradient by hand instead:

- w_f * x_t of all K-1 frames is one batched convolution before the chain;
- per step, backward runs one convolution (u_f's input gradient) and three element-wise ops;
- the filter gradients of w_f and u_f over all steps and the gradient for every frame x_t are
  one batched operation each, after the chain.

The planes run in a space-to-depth layout (`BlockLayout`): 2x2 pixel blocks as channels, which
oneDNN convolves much faster than one-channel planes. A k x k kernel becomes an equivalent
kernel over blocks, so every sum is the same sum of the same products: binary models compute the
same integers, full-precision ones the same sums up to float rounding.
"""

import numpy as np

from pixelrnn_tf._keras import tf

_STRIDES = [1, 1, 1, 1]


def _conv(planes, kernel):
    return tf.nn.conv2d(planes, kernel, strides=1, padding="SAME")


def _input_gradient(shape, kernel, gradient):
    return tf.compat.v1.nn.conv2d_backprop_input(shape, kernel, gradient, _STRIDES, "SAME")


def _filter_gradient(planes, kernel_shape, gradient):
    return tf.compat.v1.nn.conv2d_backprop_filter(planes, kernel_shape, gradient, _STRIDES, "SAME")


class BlockLayout:
    """Planes (N, H, W, C) as blocks of b x b pixels (N, H/b, W/b, b*b*C) (tf.nn.space_to_depth),
    and a k x k same-padded kernel as the kernel over blocks that computes the same convolution.

    Output pixel (b Y + qy, b X + qx) reads input pixel (b Y + qy + i - r, ...) through tap (i, j)
    of a kernel of radius r; that pixel lies in block Y + floor((qy + i - r) / b), at offset
    (qy + i - r) mod b. The block kernel therefore has 2 ceil(r / b) + 1 taps per axis, input
    channel (py b + px) C + c and output channel qy b + qx, the order of space_to_depth."""

    def __init__(self, block, kernel_size):
        self.block = int(block)
        self.kernel_size = int(kernel_size)
        radius = self.kernel_size // 2
        reach = -(-radius // self.block)
        b = self.block
        taps = np.zeros((self.kernel_size,) * 2 + (2 * reach + 1,) * 2 + (b * b,) * 2, np.float32)
        for i in range(self.kernel_size):
            for j in range(self.kernel_size):
                for qy in range(b):
                    for qx in range(b):
                        ay, py = divmod(qy + i - radius, b)
                        ax, px = divmod(qx + j - radius, b)
                        taps[i, j, ay + reach, ax + reach, py * b + px, qy * b + qx] = 1.0
        self._taps = taps

    @classmethod
    def fastest(cls, height, width, kernel_size):
        """2x2 blocks where they tile the plane (measured fastest on oneDNN), else plain pixels."""
        return cls(2 if height % 2 == 0 and width % 2 == 0 else 1, kernel_size)

    def planes(self, x):
        return x if self.block == 1 else tf.nn.space_to_depth(x, self.block)

    def pixels(self, x):
        return x if self.block == 1 else tf.nn.depth_to_space(x, self.block)

    def kernel(self, kernel):
        """(k, k, C, 1) -> the block kernel (taps, taps, b*b*C, b*b)."""
        if self.block == 1:
            return kernel
        if kernel.shape[-1] != 1:
            raise ValueError(f"BlockLayout.kernel maps kernels with one output plane, got {kernel.shape}.")
        taps = tf.constant(self._taps, dtype=kernel.dtype)
        blocked = tf.einsum("ijc,ijabpq->abpcq", kernel[..., 0], taps)
        s = blocked.shape
        return tf.reshape(blocked, [s[0], s[1], s[2] * s[3], s[4]])


def forget_chain(frames, w, u, theta, steps, activation, noise):
    """h_{steps} of the chain above, with its gradient written out.

    frames (steps * N, h, w, C): the frames x_0 .. x_{steps-1}, time-major, in one layout with
    the kernels w (.., C, P) and u (.., P, P), P the channels of one plane in that layout.
    theta: a scalar tensor (0 for none). activation: psi_f, an element-wise function whose
    gradient depends only on its input (TanhSign, StraightThroughSign, sigmoid...). noise(q):
    q plus the analog noise of the comparison (the identity when off); its draw is a constant of
    the gradient, as in the step-by-step graph."""

    @tf.custom_gradient
    def chain(frames, w, u, theta):
        projections = tf.split(_conv(frames, w), steps)
        h = tf.ones_like(projections[0])
        states, preactivations, gates = [], [], []
        for t in range(steps):
            q = noise(projections[t] + _conv(h, u)) - theta
            f = activation(q)
            states.append(h)
            preactivations.append(q)
            gates.append(f)
            h = f * h

        def gradient(dh):
            every_q = tf.concat(preactivations, 0)
            every_h = tf.concat(states, 0)
            with tf.GradientTape() as tape:
                tape.watch(every_q)
                every_f = activation(every_q)
            # dL/dq_t = dL/dh_{t+1} . h_t . psi_f'(q_t); h_t psi_f'(q_t) is known for all t at once
            slopes = tf.split(tape.gradient(every_f, every_q) * every_h, steps)
            dqs = [None] * steps
            for t in reversed(range(steps)):
                dqs[t] = dh * slopes[t]
                dh = dh * gates[t] + _input_gradient(tf.shape(dh), u, dqs[t])
            dq = tf.concat(dqs, 0)
            d_frames = _input_gradient(tf.shape(frames), w, dq)
            d_kernels = _filter_gradient(tf.concat([frames, every_h], -1), tf.shape(tf.concat([w, u], 2)), dq)
            d_w, d_u = tf.split(d_kernels, [w.shape[2], u.shape[2]], axis=2)
            return d_frames, d_w, d_u, -tf.reduce_sum(dq)

        return h, gradient

    return chain(frames, w, u, theta)
