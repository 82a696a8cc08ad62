"""Convolutional recurrent cells that run in the pixel array, usable with `tf.keras.layers.RNN`.

Every cell sees the tiled CNN output x_t (H x W x C) and keeps its state as H x W x 1 planes.
`*` is a 5x5 cross-correlation with zero padding 2, `.` the element-wise product. In the binary
variant every kernel is +-1 (learned through real-valued latent weights clipped to [-1, 1]),
sign-like nonlinearities are quantizers, and the state starts at +1; in the full-precision
variant kernels are real, gates are sigmoid/tanh and the state starts at the cell's usual value.
The hidden state is reset every K frames and the readout taken every K frames by
`pixelrnn_tf.readout.InPixelRecurrence`.

Cells (Table 2 of So et al. 2024 counts their kernels):
    PixelRNN  f = psi_f(w_f*x + u_f*h [- theta] + n);  o = psi_o(w_o*x + u_o*h);  h' = f . h
    ConvLSTM  (Shi et al. 2015)         8 kernels
    ConvGRU   (Ballas et al. 2016)      6 kernels
    MGU       (Zhou et al. 2016)        4 kernels
    SRNN      h' = psi(w*x + u*h)       2 kernels
    DifferenceCamera  o = ternary(x_t - x_{t-1}), no kernels
    RawCamera         o = x_t,                   no kernels
"""

from pixelrnn_tf import quantizers
from pixelrnn_tf._keras import tf
from pixelrnn_tf.encoders import FLOAT_BITS
from pixelrnn_tf.noise import add_analog_noise, check_stddev

_register = tf.keras.utils.register_keras_serializable(package="pixelrnn_tf")


class InPixelCell(tf.keras.layers.Layer):
    """Base class: kernel bookkeeping, quantisation, noise, state shape and accounting.

    Subclasses list their kernels in `input_kernels` (applied to x) and `hidden_kernels`
    (applied to h) and implement `step`.
    """

    input_kernels = ()
    hidden_kernels = ()
    state_planes = ("h",)
    readout_every_frame = False

    def __init__(
        self,
        height=64,
        width=64,
        kernel_size=5,
        binary=True,
        kernel_quantizer="tanh_sign",
        activation_quantizer="tanh_sign",
        zero_point=False,
        gate_noise_stddev=0.0,
        noise_at_inference=False,
        initial_state_value=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.height = int(height)
        self.width = int(width)
        self.kernel_size = int(kernel_size)
        self.binary = bool(binary)
        self.kernel_quantizer = quantizers.get(kernel_quantizer) if binary else None
        self.activation_quantizer = quantizers.get(activation_quantizer) if binary else None
        self.zero_point = bool(zero_point)
        self.gate_noise_stddev = check_stddev("gate_noise_stddev", gate_noise_stddev)
        self.noise_at_inference = bool(noise_at_inference)
        if initial_state_value is None:
            initial_state_value = self.default_initial_state_value()
        self.initial_state_value = float(initial_state_value)

    def default_initial_state_value(self):
        return 1.0 if self.binary else 0.0

    @property
    def state_size(self):
        return [tf.TensorShape([self.height, self.width, 1]) for _ in self.state_planes]

    @property
    def output_size(self):
        return tf.TensorShape([self.height, self.width, 1])

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
        if batch_size is None:
            batch_size = tf.shape(inputs)[0]
        dtype = dtype or self.compute_dtype or tf.float32
        shape = [batch_size, self.height, self.width, 1]
        return [tf.fill(shape, tf.cast(self.initial_state_value, dtype)) for _ in self.state_planes]

    def build(self, input_shape):
        in_channels = input_shape[-1] or 1
        k = self.kernel_size
        self.latent_kernels, self.kernel_zero_points = {}, {}
        for name in self.input_kernels + self.hidden_kernels:
            channels = in_channels if name in self.input_kernels else 1
            self.latent_kernels[name] = self.add_weight(
                name=name,
                shape=(k, k, channels, 1),
                initializer=tf.keras.initializers.RandomUniform(-1.0, 1.0) if self.binary else "glorot_uniform",
                constraint=tf.keras.constraints.get("weight_clip") if self.binary else None,
            )
            self.kernel_zero_points[name] = (
                self.add_weight(name=f"{name}_zero_point", shape=(), initializer="zeros")
                if self.binary and self.zero_point
                else None
            )
        super().build(input_shape)

    def kernel(self, name):
        """Kernel `name` as used in the forward pass: +-1 when binary."""
        return quantizers.quantize_weight(
            self.latent_kernels[name], self.kernel_quantizer, self.kernel_zero_points[name]
        )

    def conv(self, x, name):
        return tf.nn.conv2d(x, self.kernel(name), strides=1, padding="SAME")

    def preactivation(self, gate, x, h, training):
        """w_gate * x + u_gate * h, plus analog noise: what the chip compares against a threshold."""
        z = self.conv(x, f"w_{gate}") + self.conv(h, f"u_{gate}")
        return add_analog_noise(z, self.gate_noise_stddev, training, self.noise_at_inference)

    def sign_like(self, z):
        """+-1 nonlinearity: sign (binary) or tanh (full precision)."""
        return self.activation_quantizer(z) if self.binary else tf.tanh(z)

    def gate01(self, z):
        """{0, 1} gate: step with sigmoid surrogate (binary) or sigmoid (full precision)."""
        return quantizers.sigmoid_step(z) if self.binary else tf.sigmoid(z)

    def call(self, inputs, states, training=None):
        output, new_states = self.step(inputs, list(states), bool(training))
        return output, new_states

    def step(self, x, states, training):
        raise NotImplementedError

    # Accounting (see pixelrnn_tf.accounting); analog_bits: what one analog value costs the array.
    def in_pixel_parameters(self):
        return sum(int(tf.size(v)) for v in self.latent_kernels.values()) if self.built else 0

    def value_bits(self, analog_bits):
        return analog_bits if self.binary else FLOAT_BITS

    def state_bits_per_pixel(self, analog_bits):
        """Bits per pixel that persist from frame to frame."""
        return (1 if self.binary else FLOAT_BITS) * len(self.state_planes)

    def transient_bits_per_pixel(self, analog_bits):
        """Bits per pixel held within one step: one analog pre-activation per gate plus x."""
        gates = len(self.hidden_kernels)
        return gates * self.value_bits(analog_bits) + (1 if self.binary else FLOAT_BITS)

    def get_config(self):
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "kernel_size": self.kernel_size,
            "binary": self.binary,
            "kernel_quantizer": quantizers.serialize(self.kernel_quantizer),
            "activation_quantizer": quantizers.serialize(self.activation_quantizer),
            "zero_point": self.zero_point,
            "gate_noise_stddev": self.gate_noise_stddev,
            "noise_at_inference": self.noise_at_inference,
            "initial_state_value": self.initial_state_value,
        }


@_register
class PixelRNNCell(InPixelCell):
    r"""PixelRNN (So et al., CVPR 2024, Eqs. 3-5): a binary forget gate flips the sign of the state.

        f_t = psi_f(w_f * x_t + u_f * h_{t-1} - theta + n_f)
        o_t = psi_o(w_o * x_t + u_o * h_{t-1})
        h_t = f_t . h_{t-1}

    psi_f is sign (binary) or sigmoid (full precision); theta is an optional learned threshold;
    psi_o is the identity, or ternary with threshold delta (`output_threshold`). The output uses
    the state before this frame's update, as on the chip where f and o are computed in parallel.
    The state starts at +1 in both variants: with h = 0 the product f . h would stay 0.
    """

    input_kernels = ("w_f", "w_o")
    hidden_kernels = ("u_f", "u_o")

    def __init__(self, forget_threshold=False, output_threshold=None, **kwargs):
        super().__init__(**kwargs)
        self.forget_threshold = bool(forget_threshold)
        self.output_threshold = None if output_threshold is None else float(output_threshold)

    def default_initial_state_value(self):
        return 1.0

    def build(self, input_shape):
        super().build(input_shape)
        self.theta = (
            self.add_weight(name="forget_threshold", shape=(), initializer="zeros") if self.forget_threshold else None
        )

    def forget_gate(self, x, h, training):
        z = self.preactivation("f", x, h, training)
        if self.theta is not None:
            z = z - self.theta
        return self.activation_quantizer(z) if self.binary else tf.sigmoid(z)

    def output(self, x, h):
        o = self.conv(x, "w_o") + self.conv(h, "u_o")
        if self.output_threshold is not None:
            o = quantizers.ste_ternary(o, self.output_threshold, None)
        return o

    def step(self, x, states, training):
        (h,) = states
        f = self.forget_gate(x, h, training)
        return self.output(x, h), [f * h]

    def in_pixel_parameters(self):
        return super().in_pixel_parameters() + (1 if self.forget_threshold else 0)

    def transient_bits_per_pixel(self, analog_bits):
        # f and o pre-activations (analog) and the input bit
        return 2 * self.value_bits(analog_bits) + (1 if self.binary else FLOAT_BITS)

    def get_config(self):
        return {
            **super().get_config(),
            "forget_threshold": self.forget_threshold,
            "output_threshold": self.output_threshold,
        }


@_register
class ConvLSTMCell(InPixelCell):
    r"""Convolutional LSTM (Shi et al., NeurIPS 2015), without peepholes.

        i = s(w_i*x + u_i*h),  f = s(w_f*x + u_f*h),  o = s(w_o*x + u_o*h),  g = t(w_g*x + u_g*h)
        c' = f . c + i . g,    h' = o . t(c')

    Full precision: s = sigmoid, t = tanh, state (h, c) = 0. Binary: s and t are sign, so each
    gate keeps or flips (as PixelRNN's forget gate does), c counts in analog units and h is +-1.
    Each gate has its own input and hidden kernel as in the paper (the published in-pixel code
    reused the input kernel for the output gate; we do not).
    """

    input_kernels = ("w_i", "w_f", "w_o", "w_g")
    hidden_kernels = ("u_i", "u_f", "u_o", "u_g")
    state_planes = ("h", "c")

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
        h, c = super().get_initial_state(inputs, batch_size, dtype)
        return [h, tf.zeros_like(c)]  # the cell memory starts empty in both variants

    def step(self, x, states, training):
        h, c = states
        sig = self.sign_like if self.binary else tf.sigmoid
        i = sig(self.preactivation("i", x, h, training))
        f = sig(self.preactivation("f", x, h, training))
        o = sig(self.preactivation("o", x, h, training))
        g = self.sign_like(self.preactivation("g", x, h, training))
        c_next = f * c + i * g
        h_next = o * self.sign_like(c_next)
        return h_next, [h_next, c_next]

    def state_bits_per_pixel(self, analog_bits):
        return (1 + analog_bits) if self.binary else 2 * FLOAT_BITS


@_register
class ConvGRUCell(InPixelCell):
    r"""Convolutional GRU (Ballas et al., ICLR 2016).

        z = s(w_z*x + u_z*h),  r = s(w_r*x + u_r*h)
        n = t(w_n*x + u_n*(r . h)),   h' = (1 - z) . h + z . n

    s is a {0, 1} step (binary) or sigmoid; t is sign or tanh. With binary z and n the state stays
    +-1. The update gate uses its own hidden kernel u_z (the published in-pixel code ignored it).
    """

    input_kernels = ("w_z", "w_r", "w_n")
    hidden_kernels = ("u_z", "u_r", "u_n")

    def step(self, x, states, training):
        (h,) = states
        z = self.gate01(self.preactivation("z", x, h, training))
        r = self.gate01(self.preactivation("r", x, h, training))
        n = self.sign_like(self.preactivation("n", x, r * h, training))
        h_next = (1.0 - z) * h + z * n
        return h_next, [h_next]


@_register
class MGUCell(InPixelCell):
    r"""Minimal gated unit (Zhou et al., 2016).

        f = s(w_f*x + u_f*h),   n = t(w_n*x + u_n*(f . h)),   h' = (1 - f) . h + f . n

    s is a {0, 1} step (binary) or sigmoid; t is sign or tanh.
    """

    input_kernels = ("w_f", "w_n")
    hidden_kernels = ("u_f", "u_n")

    def step(self, x, states, training):
        (h,) = states
        f = self.gate01(self.preactivation("f", x, h, training))
        n = self.sign_like(self.preactivation("n", x, f * h, training))
        h_next = (1.0 - f) * h + f * n
        return h_next, [h_next]


@_register
class SimpleRNNCell(InPixelCell):
    r"""Convolutional simple RNN (Elman): h' = t(w*x + u*h), t = sign (binary) or tanh."""

    input_kernels = ("w_h",)
    hidden_kernels = ("u_h",)

    def step(self, x, states, training):
        (h,) = states
        h_next = self.sign_like(self.preactivation("h", x, h, training))
        return h_next, [h_next]


@_register
class DifferenceCameraCell(InPixelCell):
    r"""Difference camera (event-camera-like): o_t = ternary(x_t - x_{t-1}) with threshold delta.

    The state holds the previous frame (analog) and is reset to 0 every K frames, so the first
    output of a window is ternary(x_t). Read out every frame. No parameters.
    """

    readout_every_frame = True

    def __init__(self, threshold=0.1, **kwargs):
        kwargs.setdefault("initial_state_value", 0.0)
        super().__init__(**kwargs)
        self.threshold = check_stddev("difference camera threshold", threshold)

    def step(self, x, states, training):
        (previous,) = states
        diff = add_analog_noise(x - previous, self.gate_noise_stddev, training, self.noise_at_inference)
        return quantizers.ste_ternary(diff, self.threshold, None), [x]

    def state_bits_per_pixel(self, analog_bits):
        return analog_bits  # the previous frame, held in an analog register

    def transient_bits_per_pixel(self, analog_bits):
        return analog_bits + 2  # the current frame and the ternary output

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


@_register
class RawCameraCell(InPixelCell):
    """A conventional camera: every frame is read out as it is. No parameters, no state use.

    The whole array is read out; the downsampling to the model's input size happens off the
    sensor, so `pixelrnn_tf.account` counts the full array's pixels, as in Table 2 of So et al.
    2024.
    """

    readout_every_frame = True

    def __init__(self, **kwargs):
        kwargs.setdefault("initial_state_value", 0.0)
        # Models saved before the array became data stored its size here; the array is now an
        # argument of `account`.
        kwargs.pop("sensor_height", None)
        kwargs.pop("sensor_width", None)
        super().__init__(**kwargs)

    def step(self, x, states, training):
        return x, states

    def state_bits_per_pixel(self, analog_bits):
        return 0

    def transient_bits_per_pixel(self, analog_bits):
        return analog_bits


@_register
class CNNOnlyCell(InPixelCell):
    """No recurrence: the readout is the CNN's output at the window's last frame, so the decoder
    sees one frame's spatial features at the same bandwidth as PixelRNN. The control that shows
    what the recurrent cell adds."""

    def step(self, x, states, training):
        return x, states

    def state_bits_per_pixel(self, analog_bits):
        return 0

    def transient_bits_per_pixel(self, analog_bits):
        return 1 if self.binary else FLOAT_BITS


CELLS = {
    "pixelrnn": PixelRNNCell,
    "convlstm": ConvLSTMCell,
    "convgru": ConvGRUCell,
    "mgu": MGUCell,
    "srnn": SimpleRNNCell,
    "diff": DifferenceCameraCell,
    "raw": RawCameraCell,
    "cnn": CNNOnlyCell,
}


def arch_name(cell):
    """The `ModelConfig.arch` name of a cell instance (pixelrnn, convlstm, ...)."""
    for name, cls in CELLS.items():
        if type(cell) is cls:
            return name
    raise TypeError(f"{type(cell).__name__} is not one of the cells {', '.join(CELLS)}.")
