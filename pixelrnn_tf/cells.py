"""Convolutional recurrent cells that run in the pixel array.

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

Every kernel is an `InPixelConv2D` larq layer of the cell (a Keras Model), so larq's summary
counts it at its bit width and its MACs per frame. A step computes all gates at once, as one
convolution of the planes [x, h] with the kernels of every gate stacked (`gate_kernel`: w_g over
x, u_g over h), built once per window from the forward (quantised) kernels; on a CPU one small
convolution costs about what its dispatch costs, so one beats eight. GRU's and MGU's candidate
sees r . h or f . h, known only after the gates: its hidden kernel runs on its own. The sums are
of +-1 products, so the binary cells compute exactly what gate-by-gate convolutions compute.
A cell is also a Keras RNN cell: `cell(x, states)` runs one step. `run_window` runs a window of
K steps; PixelRNN's runs as one sign-flip chain with a hand-written gradient
(pixelrnn_tf.forget_chain), the others step by step.
"""

from pixelrnn_tf import quantizers
from pixelrnn_tf._keras import tf
from pixelrnn_tf.forget_chain import BlockLayout, forget_chain
from pixelrnn_tf.layers import FLOAT_BITS, InPixelConv2D, LearnedScalar
from pixelrnn_tf.noise import add_analog_noise, check_stddev

_register = tf.keras.utils.register_keras_serializable(package="pixelrnn_tf")


def _gates(z):
    """The per-gate planes (B, H, W, 1) of stacked pre-activations (B, H, W, G). tf.split, not
    slicing: the gradient of a slice writes a whole zero tensor per slice."""
    return tf.split(z, z.shape[-1], axis=-1)


class InPixelCell(tf.keras.Model):
    """Base class: kernel layers, quantisation, noise, state shape and accounting.

    Subclasses list their kernels in `input_kernels` (applied to x) and `hidden_kernels` (applied
    to h), gate by gate, and implement `step`. `gated_hidden` names the hidden kernels whose input
    is not h itself (GRU's and MGU's candidate, which see r . h or f . h); they run on their own.
    """

    input_kernels = ()
    hidden_kernels = ()
    gated_hidden = ()
    state_planes = ("h",)
    readout_every_frame = False
    stateless = False  # the readout is a frame itself (raw camera, CNN only): no step runs

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
        kernel_q = quantizers.get(kernel_quantizer) if binary else None
        # the kernel layers first: larq reads a model's input precision from its first layer
        self.kernel_layers = {
            name: InPixelConv2D(1, self.kernel_size, kernel_q, input_precision=self.input_bits(name), name=name)
            for name in self.input_kernels + self.hidden_kernels
        }
        self.zero_point_layers = (
            {name: LearnedScalar(0.0, name=f"{name}_zero_point") for name in self.kernel_layers} if binary and zero_point else {}
        )
        self.kernel_quantizer = kernel_q
        self.activation_quantizer = quantizers.get(activation_quantizer) if binary else None
        self.zero_point = bool(zero_point)
        self.gate_noise_stddev = check_stddev("gate_noise_stddev", gate_noise_stddev)
        self.noise_at_inference = bool(noise_at_inference)
        if initial_state_value is None:
            initial_state_value = self.default_initial_state_value()
        self.initial_state_value = float(initial_state_value)

    def default_initial_state_value(self):
        return 1.0 if self.binary else 0.0

    def input_bits(self, kernel):
        """Bits of what `kernel` convolves: +-1 planes (binary) or float32."""
        if not self.binary:
            return FLOAT_BITS
        return 2 if kernel in self.gated_hidden else 1  # r . h and f . h are in {-1, 0, 1}

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
        for name, layer in self.kernel_layers.items():
            channels = in_channels if name in self.input_kernels else 1
            if not layer.built:  # a cell deserialized with its build config comes built
                layer.build((None, self.height, self.width, channels))
        tf.keras.layers.Layer.build(self, input_shape)  # Model.build would trace call() once more

    # ---------------------------------------------------------------- kernels
    @property
    def latent_kernels(self):
        """name -> the real-valued latent weights that training updates, (k, k, in, 1)."""
        return {name: layer.latent_kernel for name, layer in self.kernel_layers.items()}

    @property
    def kernel_zero_points(self):
        return {name: self.zero_point_layers[name].value if name in self.zero_point_layers else None for name in self.kernel_layers}

    def kernel(self, name):
        """Kernel `name` as used in the forward pass: +-1 when binary."""
        zero_point = self.zero_point_layers[name].value if name in self.zero_point_layers else None
        return self.kernel_layers[name].forward_kernel(zero_point)

    def forward_kernels(self):
        """Every kernel as the forward pass uses it, and the stacked gate kernel: computed once
        for all steps of a window."""
        kernels = {name: self.kernel(name) for name in self.kernel_layers}
        if self.input_kernels:
            kernels["gates"] = self.gate_kernel(kernels)
        return kernels

    def gate_kernel(self, kernels):
        """(k, k, C + 1, gates): gate g's w_g over the C channels of x, u_g over h (zero for the
        hidden kernels in gated_hidden, which see another plane)."""
        columns = []
        for w, u in zip(self.input_kernels, self.hidden_kernels):
            hidden = tf.zeros_like(kernels[u]) if u in self.gated_hidden else kernels[u]
            columns.append(tf.concat([kernels[w], hidden], axis=2))
        return tf.concat(columns, axis=3)

    def conv(self, x, name, kernels=None):
        kernel = self.kernel(name) if kernels is None else kernels[name]
        return tf.nn.conv2d(x, kernel, strides=1, padding="SAME")

    def gate_preactivations(self, x, h, kernels):
        """w_g * x + u_g * h of every gate as one convolution: (B, H, W, gates)."""
        return tf.nn.conv2d(tf.concat([x, h], axis=-1), kernels["gates"], strides=1, padding="SAME")

    def noisy(self, z, training):
        """z plus the analog noise of the comparison that follows (training, or if asked)."""
        return add_analog_noise(z, self.gate_noise_stddev, training, self.noise_at_inference)

    def preactivation(self, gate, x, h, training):
        """w_gate * x + u_gate * h, plus analog noise: what the chip compares against a threshold."""
        return self.noisy(self.conv(x, f"w_{gate}") + self.conv(h, f"u_{gate}"), training)

    def sign_like(self, z):
        """+-1 nonlinearity: sign (binary) or tanh (full precision)."""
        return self.activation_quantizer(z) if self.binary else tf.tanh(z)

    def gate01(self, z):
        """{0, 1} gate: step with sigmoid surrogate (binary) or sigmoid (full precision)."""
        return quantizers.sigmoid_step(z) if self.binary else tf.sigmoid(z)

    # ---------------------------------------------------------------- stepping
    def call(self, inputs, states, training=None):
        """One step as a Keras RNN cell: (output, new states)."""
        return self.step(inputs, list(states), self.forward_kernels(), bool(training))

    def step(self, x, states, kernels, training):
        """One frame: x (B, H, W, C), the state planes and the forward kernels (forward_kernels).
        Returns (output, new states)."""
        raise NotImplementedError

    def run_window(self, x, training):
        """The K steps of every window in x (N, K, H, W, C) from the initial state: the output of
        the last step, or of every step stacked on axis 1 (readout_every_frame). The forward
        kernels are computed once for all steps."""
        window = x.shape[1]
        kernels = self.forward_kernels()
        states = self.get_initial_state(batch_size=tf.shape(x)[0], dtype=x.dtype)
        outputs = []
        # unstack, not x[:, t]: the gradient of a slice writes a zero tensor of the whole window
        for x_t in tf.unstack(x, num=window, axis=1):
            out, states = self.step(x_t, states, kernels, training)
            outputs.append(out)
        return tf.stack(outputs, axis=1) if self.readout_every_frame else outputs[-1]

    # Accounting (see pixelrnn_tf.accounting); analog_bits: what one analog value costs the array.
    def in_pixel_parameters(self):
        return sum(int(layer.kernel.shape.num_elements()) for layer in self.kernel_layers.values()) if self.built else 0

    def value_bits(self, analog_bits):
        return analog_bits if self.binary else FLOAT_BITS

    def state_bits_per_pixel(self, analog_bits):
        """Bits per pixel that persist from frame to frame."""
        return (1 if self.binary else FLOAT_BITS) * len(self.state_planes)

    def transient_bits_per_pixel(self, analog_bits):
        """Bits per pixel held within one step: one analog pre-activation per gate plus x."""
        gates = len(self.hidden_kernels)
        return gates * self.value_bits(analog_bits) + (1 if self.binary else FLOAT_BITS)

    def load_own_variables(self, store):
        if len(store.keys()):  # pixelrnn-tf 0.1 kept the kernels here (pixelrnn_tf.legacy)
            from pixelrnn_tf.layers import LEGACY_HELP, LegacyModelError

            raise LegacyModelError(f"This file {LEGACY_HELP}")

    def legacy_variables(self):
        """The variables in the order pixelrnn-tf 0.1 stored them (pixelrnn_tf.legacy)."""
        order = []
        for name in self.kernel_layers:
            order.append(self.latent_kernels[name])
            if name in self.zero_point_layers:
                order.append(self.zero_point_layers[name].value)
        return order

    def get_config(self):
        return {
            **tf.keras.layers.Layer.get_config(self),  # Model.get_config is empty for subclasses
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
        self.theta_layer = LearnedScalar(0.0, name="forget_threshold") if self.forget_threshold else None

    @property
    def theta(self):
        return None if self.theta_layer is None else self.theta_layer.value

    def default_initial_state_value(self):
        return 1.0

    def _forget(self, z, training):
        z = self.noisy(z, training)
        if self.theta is not None:
            z = z - self.theta
        return self.activation_quantizer(z) if self.binary else tf.sigmoid(z)

    def _output(self, o):
        return o if self.output_threshold is None else quantizers.ste_ternary(o, self.output_threshold, None)

    def forget_gate(self, x, h, training):
        return self._forget(self.conv(x, "w_f") + self.conv(h, "u_f"), training)

    def output(self, x, h):
        return self._output(self.conv(x, "w_o") + self.conv(h, "u_o"))

    def step(self, x, states, kernels, training):
        (h,) = states
        z_f, z_o = _gates(self.gate_preactivations(x, h, kernels))
        f = self._forget(z_f, training)
        return self._output(z_o), [f * h]

    def _forget_activation(self):
        """psi_f, where the window's hand-written gradient (forget_chain) can take it: an
        element-wise quantizer with no random draw, or the sigmoid; None otherwise."""
        if not self.binary:
            return tf.sigmoid
        return self.activation_quantizer if getattr(self.activation_quantizer, "elementwise", False) else None

    def run_window(self, x, training):
        """The readout of every window, by pixelrnn_tf.forget_chain (the same sums as `step`, in
        a few large operations); other forget quantizers take the step-by-step loop."""
        activation = self._forget_activation()
        if activation is None:
            return super().run_window(x, training)
        window = x.shape[1]
        layout = BlockLayout.fastest(self.height, self.width, self.kernel_size)
        kernels = {name: layout.kernel(self.kernel(name)) for name in self.kernel_layers}
        head, last = tf.split(x, [window - 1, 1], axis=1)
        last = layout.planes(last[:, 0])
        h = tf.ones_like(last[..., : layout.block**2])
        if window > 1:
            shape = tf.shape(head)
            frames = tf.reshape(tf.transpose(head, [1, 0, 2, 3, 4]), tf.concat([[-1], shape[2:]], axis=0))
            theta = tf.zeros([], x.dtype) if self.theta is None else self.theta
            h = forget_chain(
                layout.planes(frames), kernels["w_f"], kernels["u_f"], theta, window - 1, activation,
                lambda q: self.noisy(q, training),
            )
        z_o = tf.nn.conv2d(tf.concat([last, h], -1), tf.concat([kernels["w_o"], kernels["u_o"]], 2), 1, "SAME")
        return layout.pixels(self._output(z_o))

    def in_pixel_parameters(self):
        return super().in_pixel_parameters() + (1 if self.forget_threshold else 0)

    def transient_bits_per_pixel(self, analog_bits):
        # f and o pre-activations (analog) and the input bit
        return 2 * self.value_bits(analog_bits) + (1 if self.binary else FLOAT_BITS)

    def legacy_variables(self):
        return super().legacy_variables() + ([self.theta] if self.theta is not None else [])

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

    def step(self, x, states, kernels, training):
        h, c = states
        z_i, z_f, z_o, z_g = _gates(self.noisy(self.gate_preactivations(x, h, kernels), training))
        sig = self.sign_like if self.binary else tf.sigmoid
        i, f, o = sig(z_i), sig(z_f), sig(z_o)
        g = self.sign_like(z_g)
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
    gated_hidden = ("u_n",)

    def step(self, x, states, kernels, training):
        (h,) = states
        z_z, z_r, x_n = _gates(self.gate_preactivations(x, h, kernels))  # x_n: w_n * x alone
        z, r = self.gate01(self.noisy(z_z, training)), self.gate01(self.noisy(z_r, training))
        n = self.sign_like(self.noisy(x_n + self.conv(r * h, "u_n", kernels), training))
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
    gated_hidden = ("u_n",)

    def step(self, x, states, kernels, training):
        (h,) = states
        z_f, x_n = _gates(self.gate_preactivations(x, h, kernels))  # x_n: w_n * x alone
        f = self.gate01(self.noisy(z_f, training))
        n = self.sign_like(self.noisy(x_n + self.conv(f * h, "u_n", kernels), training))
        h_next = (1.0 - f) * h + f * n
        return h_next, [h_next]


@_register
class SimpleRNNCell(InPixelCell):
    r"""Convolutional simple RNN (Elman): h' = t(w*x + u*h), t = sign (binary) or tanh."""

    input_kernels = ("w_h",)
    hidden_kernels = ("u_h",)

    def step(self, x, states, kernels, training):
        (h,) = states
        h_next = self.sign_like(self.noisy(self.gate_preactivations(x, h, kernels), training))
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

    def step(self, x, states, kernels, training):
        (previous,) = states
        diff = self.noisy(x - previous, training)
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
    stateless = True

    def __init__(self, **kwargs):
        kwargs.setdefault("initial_state_value", 0.0)
        # Models saved before the array became data stored its size here; the array is now an
        # argument of `account`.
        kwargs.pop("sensor_height", None)
        kwargs.pop("sensor_width", None)
        super().__init__(**kwargs)

    def step(self, x, states, kernels, training):
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

    stateless = True

    def step(self, x, states, kernels, training):
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
