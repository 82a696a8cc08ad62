"""The in-pixel building blocks as larq layers, so that `larq.models.summary` and
`larq.models.ModelProfile` see every in-pixel weight at its true bit width and count the in-pixel
multiply-accumulates.

InPixelConv2D    one k x k, same-padded, bias-free convolution kernel of the pixel array: a
                 `larq.layers.QuantConv2D` whose kernel is a larq QuantizedVariable (precision 1
                 for binary, 2 for ternary, 32 for full precision).
LearnedScalar    one learned scalar (a threshold, or a kernel's zero-point), as a layer of its own
                 so that larq counts it (32 bits, no MACs).

The encoder and the cells own these layers but compute with them their own way: they take each
kernel's forward value (`InPixelConv2D.forward_kernel`, with the learned zero-point of PixelRNN
section 3.3, which the owner holds so that larq does not count it as a kernel entry) and run all
kernels of a step as one convolution. The layers are therefore never nodes of the
functional model, and two things that larq reads from a node are declared instead:
- the input precision, with `lq.quantizers.NoOp(precision)`: the inputs of an in-pixel
  convolution are binarised upstream, and binarising them again would change the surrogate
  gradient;
- the output shape, which is the per-frame shape the layer was built for, so that larq's MAC
  count is per frame: output pixels x kernel entries.
"""

import larq as lq

from pixelrnn_tf import quantizers
from pixelrnn_tf._keras import tf

_register = tf.keras.utils.register_keras_serializable(package="pixelrnn_tf")

FLOAT_BITS = 32  # a full-precision value is a float32


class LegacyModelError(ValueError):
    """A `.keras` file saved before the in-pixel layers were larq layers (pixelrnn-tf 0.1)."""


LEGACY_HELP = (
    "was saved by pixelrnn-tf 0.1, before the in-pixel layers became larq layers. Load it with "
    "pixelrnn_tf.load_model(path), which converts it, or rewrite it once with `pixelrnn upgrade-model PATH`."
)


class _RefusesLegacyWeights:
    """A layer of the new layout: loading it with no weights stored for it means an old file."""

    def load_own_variables(self, store):
        own = self._trainable_weights + self._non_trainable_weights
        if own and len(store.keys()) == 0:
            raise LegacyModelError(f"Layer {self.name!r} found no weights in this file: the file {LEGACY_HELP}")
        super().load_own_variables(store)


@_register
class InPixelConv2D(_RefusesLegacyWeights, lq.layers.QuantConv2D):
    """A convolution of the pixel array: `filters` kernels of k x k, zero padding, no bias.

    kernel_quantizer: a pixelrnn_tf quantizer (None: full precision); binary kernels keep latent
    weights in [-1, 1] (larq's weight_clip) initialised uniformly there. input_precision: bits of
    the inputs (1: binary; declared for larq, see the module docstring)."""

    def __init__(self, filters=1, kernel_size=5, kernel_quantizer=None, input_precision=1, **kwargs):
        binary = kernel_quantizer is not None
        kwargs.pop("input_quantizer", None)  # always the declared precision
        kwargs.setdefault("kernel_initializer", tf.keras.initializers.RandomUniform(-1.0, 1.0) if binary else "glorot_uniform")
        kwargs.setdefault("kernel_constraint", "weight_clip" if binary else None)
        super().__init__(
            filters,
            kernel_size,
            padding="same",
            use_bias=False,
            kernel_quantizer=quantizers.get(kernel_quantizer),
            input_quantizer=lq.quantizers.NoOp(precision=int(input_precision)),
            **{k: v for k, v in kwargs.items() if k not in ("padding", "use_bias")},
        )
        self.input_precision = int(input_precision)
        self._frame_shape = None

    def build(self, input_shape):
        self._frame_shape = tuple(input_shape[1:])
        super().build(input_shape)

    @property
    def latent_kernel(self):
        """The real-valued weights training updates (the kernel itself at full precision)."""
        kernel = self.kernel
        return getattr(kernel, "latent_variable", kernel)

    def forward_kernel(self, zero_point=None):
        """The kernel the forward pass uses: q(w~ - zeta) (zeta: the owner's learned zero-point, or
        none), +-1 when binary, the latent weights themselves at full precision."""
        return quantizers.quantize_weight(self.latent_kernel, self.kernel_quantizer, zero_point)

    def call(self, inputs):
        return tf.nn.conv2d(inputs, self.forward_kernel(), strides=1, padding="SAME")

    @property
    def output_shape(self):
        if self._frame_shape is None:
            raise AttributeError(f"{self.name} is not built yet.")
        return tuple(self.compute_output_shape((None,) + self._frame_shape).as_list())

    def get_config(self):
        config = super().get_config()
        for key in ("padding", "use_bias", "input_quantizer", "kernel_size", "filters"):
            config.pop(key, None)
        return {
            **config,
            "filters": self.filters,
            "kernel_size": self.kernel_size[0],
            "input_precision": self.input_precision,
        }


@_register
class LearnedScalar(_RefusesLegacyWeights, tf.keras.layers.Layer):
    """One trainable scalar, as a layer so that larq's profile counts it (32 bits, no MACs);
    shape=(n,) makes it one per channel (the encoder's adaptive thresholds)."""

    def __init__(self, initial_value=0.0, shape=(), **kwargs):
        super().__init__(**kwargs)
        self.initial_value = float(initial_value)
        self.shape = tuple(int(d) for d in shape)
        self.value = self.add_weight(
            name="value", shape=self.shape, initializer=tf.keras.initializers.Constant(self.initial_value)
        )
        self.built = True

    def call(self, inputs=None):
        return self.value

    def get_config(self):
        config = {**super().get_config(), "initial_value": self.initial_value}
        return {**config, "shape": list(self.shape)} if self.shape else config
