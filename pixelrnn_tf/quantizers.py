"""Quantizers for in-pixel networks: forward maps to {-1, +1}, {0, 1} or {-1, 0, +1}, with the
surrogate gradients used to train through them.

Every quantizer is a larq `Quantizer` (a Keras layer with a `precision` attribute that
`larq.models.summary` reads), registered so a string name in a config or a saved `.keras` model
finds it. Forward signs are written as a select on `x >= 0` (sign(0) = +1, as on SCAMP-5's
comparator) because TFLite Micro has no SIGN kernel.
"""

import larq as lq

from pixelrnn_tf._keras import tf

_PACKAGE = "pixelrnn_tf"


def select_sign(x):
    """sign(x) with sign(0) = +1, lowered as SELECT_V2(x >= 0, 1, -1) rather than SIGN."""
    return tf.where(x >= 0, tf.ones_like(x), -tf.ones_like(x))


def select_step(x):
    """Heaviside step with step(0) = 1: {0, 1}."""
    return tf.where(x >= 0, tf.ones_like(x), tf.zeros_like(x))


def select_ternary(x, threshold):
    """+1 where x > threshold, -1 where x < -threshold, 0 in between."""
    return tf.where(x > threshold, tf.ones_like(x), tf.where(x < -threshold, -tf.ones_like(x), tf.zeros_like(x)))


def _clipped(x, dy, clip_value):
    if clip_value is None:
        return dy
    return tf.where(tf.abs(x) <= clip_value, dy, tf.zeros_like(dy))


def tanh_sign(x, m=2.0):
    """Sign forward, d/dx tanh(m x) = m (1 - tanh^2(m x)) backward (PixelRNN, So et al. 2024, Eq. 6)."""

    @tf.custom_gradient
    def _tanh_sign(x):
        def grad(dy):
            t = tf.tanh(m * x)
            return dy * m * (1.0 - t * t)

        return select_sign(x), grad

    return _tanh_sign(x)


def ste_sign(x, clip_value=1.0):
    """Sign forward, identity gradient where |x| <= clip_value (Courbariaux et al. 2016)."""

    @tf.custom_gradient
    def _ste_sign(x):
        return select_sign(x), lambda dy: _clipped(x, dy, clip_value)

    return _ste_sign(x)


def sigmoid_step(x, m=4.0):
    """{0, 1} step forward, d/dx sigmoid(m x) = m s (1 - s) backward."""

    @tf.custom_gradient
    def _sigmoid_step(x):
        def grad(dy):
            s = tf.sigmoid(m * x)
            return dy * m * s * (1.0 - s)

        return select_step(x), grad

    return _sigmoid_step(x)


def ste_ternary(x, threshold=0.5, clip_value=1.0):
    """{-1, 0, +1} with a dead zone |x| <= threshold, straight-through gradient (Li et al. 2016)."""

    @tf.custom_gradient
    def _ste_ternary(x):
        return select_ternary(x, threshold), lambda dy: _clipped(x, dy, clip_value)

    return _ste_ternary(x)


class _PixelQuantizer(lq.quantizers.Quantizer):
    """Base: quantizers hold no weights, so Keras never tracks anything inside them.

    elementwise: each output and its gradient depend only on the input at that element, with no
    random draw, so a hand-written gradient may take the quantizer's derivative for many inputs
    at once (pixelrnn_tf.forget_chain)."""

    elementwise = True

    def compute_output_shape(self, input_shape):
        return input_shape


@tf.keras.utils.register_keras_serializable(package=_PACKAGE)
class TanhSign(_PixelQuantizer):
    r"""Binary sign with the tanh surrogate gradient of PixelRNN (So et al., CVPR 2024, Eq. 6).

    Forward q(x) = +1 if x >= 0 else -1. Backward dq/dx = m (1 - tanh^2(m x)): a smooth bump
    whose width 1/m trades gradient bias against vanishing gradients. m = 2 follows the paper.
    """

    precision = 1

    def __init__(self, m=2.0, **kwargs):
        self.m = float(m)
        super().__init__(**kwargs)

    def call(self, inputs):
        return tanh_sign(inputs, self.m)

    def get_config(self):
        return {**super().get_config(), "m": self.m}


@tf.keras.utils.register_keras_serializable(package=_PACKAGE)
class StraightThroughSign(_PixelQuantizer):
    """larq's `ste_sign` (straight-through estimator, gradient zeroed where |x| > clip_value),
    with a SIGN-free forward pass for TFLite Micro."""

    precision = 1

    def __init__(self, clip_value=1.0, **kwargs):
        self.clip_value = clip_value
        super().__init__(**kwargs)

    def call(self, inputs):
        return ste_sign(inputs, self.clip_value)

    def get_config(self):
        return {**super().get_config(), "clip_value": self.clip_value}


@tf.keras.utils.register_keras_serializable(package=_PACKAGE)
class StochasticSign(_PixelQuantizer):
    """Stochastic binarisation (Courbariaux et al. 2016): sign(x + u), u ~ U[-0.5, 0.5], in
    training; deterministic sign at inference. Straight-through gradient."""

    precision = 1
    elementwise = False  # draws noise in training

    def __init__(self, clip_value=1.0, **kwargs):
        self.clip_value = clip_value
        super().__init__(**kwargs)

    def call(self, inputs, training=None):
        if training:
            noise = tf.random.uniform(tf.shape(inputs), -0.5, 0.5, dtype=inputs.dtype)
            # The noise shifts the decision only; the gradient is taken at the clean input.
            noisy = inputs + tf.stop_gradient(noise)
            return ste_sign(noisy, self.clip_value)
        return ste_sign(inputs, self.clip_value)

    def get_config(self):
        return {**super().get_config(), "clip_value": self.clip_value}


@tf.keras.utils.register_keras_serializable(package=_PACKAGE)
class SigmoidStep(_PixelQuantizer):
    """{0, 1} step with the derivative of sigmoid(m x) as surrogate: the binary version of a
    sigmoid gate (GRU update gate, MGU forget gate)."""

    precision = 1

    def __init__(self, m=4.0, **kwargs):
        self.m = float(m)
        super().__init__(**kwargs)

    def call(self, inputs):
        return sigmoid_step(inputs, self.m)

    def get_config(self):
        return {**super().get_config(), "m": self.m}


@tf.keras.utils.register_keras_serializable(package=_PACKAGE)
class SteTernary(_PixelQuantizer):
    """Ternary {-1, 0, +1} with threshold delta, straight-through gradient. The difference camera
    and PixelRNN's optional ternary output use it."""

    precision = 2

    def __init__(self, threshold=0.5, clip_value=None, **kwargs):
        self.threshold = float(threshold)
        self.clip_value = clip_value
        super().__init__(**kwargs)

    def call(self, inputs):
        return ste_ternary(inputs, self.threshold, self.clip_value)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "clip_value": self.clip_value}


@tf.keras.utils.register_keras_serializable(package=_PACKAGE)
class GumbelSoftmaxQuantizer(_PixelQuantizer):
    r"""Binary or ternary quantizer by the Gumbel-softmax trick (Jang et al. 2017), hard forward.

    The input x scores the levels v: binary v = (-1, +1) with logits (-x, x); ternary
    v = (-1, 0, +1) with logits (-x - delta, 0, x - delta), so that the noiseless argmax is
    exactly sign(x) (binary) or the ternary threshold at delta. In training, Gumbel noise g is
    added and y_soft = softmax((logits + g) / temperature); the forward value is the hard level
    of argmax, the gradient that of sum(y_soft * v) (straight-through). At inference no noise.
    """

    elementwise = False  # draws Gumbel noise in training

    def __init__(self, levels=2, temperature=1.0, threshold=0.5, **kwargs):
        if levels not in (2, 3):
            raise ValueError(f"GumbelSoftmaxQuantizer: levels must be 2 (binary) or 3 (ternary), got {levels}.")
        if temperature <= 0:
            raise ValueError(f"GumbelSoftmaxQuantizer: temperature must be > 0, got {temperature}.")
        self.levels = int(levels)
        self.temperature = float(temperature)
        self.threshold = float(threshold)
        super().__init__(**kwargs)

    @property
    def precision(self):
        return 1 if self.levels == 2 else 2

    def _logits(self, x):
        if self.levels == 2:
            return tf.stack([-x, x], axis=-1), tf.constant([-1.0, 1.0], x.dtype)
        return (
            tf.stack([-x - self.threshold, tf.zeros_like(x), x - self.threshold], axis=-1),
            tf.constant([-1.0, 0.0, 1.0], x.dtype),
        )

    def call(self, inputs, training=None):
        logits, values = self._logits(inputs)
        hard = select_sign(inputs) if self.levels == 2 else select_ternary(inputs, self.threshold)
        if not training:
            return hard
        u = tf.random.uniform(tf.shape(logits), 1e-6, 1.0 - 1e-6, dtype=inputs.dtype)
        gumbel = -tf.math.log(-tf.math.log(u))
        noisy = logits + gumbel
        soft = tf.reduce_sum(tf.nn.softmax(noisy / self.temperature, axis=-1) * values, axis=-1)
        hard = tf.gather(values, tf.argmax(noisy, axis=-1))
        return soft + tf.stop_gradient(hard - soft)

    def get_config(self):
        return {
            **super().get_config(),
            "levels": self.levels,
            "temperature": self.temperature,
            "threshold": self.threshold,
        }


QUANTIZERS = {
    "tanh_sign": TanhSign,
    "ste_sign": StraightThroughSign,
    "stochastic_sign": StochasticSign,
    "sigmoid_step": SigmoidStep,
    "ste_ternary": SteTernary,
    "gumbel_binary": lambda **kw: GumbelSoftmaxQuantizer(levels=2, **kw),
    "gumbel_ternary": lambda **kw: GumbelSoftmaxQuantizer(levels=3, **kw),
}


def get(identifier, **kwargs):
    """A quantizer from a name in QUANTIZERS (with keyword arguments), a dict {"name": ...,
    **kwargs}, a serialised Keras config, or an instance."""
    if identifier is None or isinstance(identifier, lq.quantizers.Quantizer):
        return identifier
    if isinstance(identifier, dict):
        if "class_name" in identifier:
            return tf.keras.layers.deserialize(identifier)
        options = dict(identifier)
        return get(options.pop("name", None) or "", **options, **kwargs)
    if isinstance(identifier, str):
        if identifier not in QUANTIZERS:
            raise ValueError(
                f"Unknown quantizer {identifier!r}; choose one of {', '.join(sorted(QUANTIZERS))}."
            )
        return QUANTIZERS[identifier](**kwargs)
    raise TypeError(f"Cannot interpret {identifier!r} as a quantizer.")


def serialize(quantizer):
    return None if quantizer is None else tf.keras.layers.serialize(quantizer)


def quantize_weight(latent, quantizer, zero_point=None):
    """w = q(w~ - zeta): the binary weight from its real-valued latent weight and an optional
    learned zero-point zeta (PixelRNN section 3.3). Without a quantizer (full precision) w = w~."""
    if quantizer is None:
        return latent
    if zero_point is not None:
        latent = latent - zero_point
    return quantizer(latent)
