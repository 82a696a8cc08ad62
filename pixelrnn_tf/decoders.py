"""Off-sensor decoders: from the readouts of every window (B, N, H, W, C) to class logits.

The decoder runs on the host (or a microcontroller), so it is full precision. Each window's
readout is decoded on its own and the logits of the N = T/K windows are averaged.
"""

from pixelrnn_tf import quantizers
from pixelrnn_tf._keras import tf

_register = tf.keras.utils.register_keras_serializable(package="pixelrnn_tf")


def _merge_windows(readouts):
    shape = tf.shape(readouts)
    return tf.reshape(readouts, tf.concat([[-1], shape[2:]], axis=0)), shape[0], shape[1]


def _mean_over_windows(logits, batch, windows, num_classes):
    return tf.reduce_mean(tf.reshape(logits, [batch, windows, num_classes]), axis=1)


@_register
class LinearDecoder(tf.keras.layers.Layer):
    """logits = A flatten_row_major(readout) + b, averaged over windows."""

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.flatten = tf.keras.layers.Flatten()
        self.dense = tf.keras.layers.Dense(self.num_classes, name="fc")

    def build(self, input_shape):
        self.dense.build((None, int(input_shape[2] * input_shape[3] * input_shape[4])))
        super().build(input_shape)

    def call(self, readouts, training=None):
        planes, batch, windows = _merge_windows(readouts)
        return _mean_over_windows(self.dense(self.flatten(planes)), batch, windows, self.num_classes)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], self.num_classes])

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@_register
class ReferenceDecoder(tf.keras.layers.Layer):
    r"""The PixelRNN authors' decoder: z = tanh(BN(s . o)) - offset, logits = A flatten(z) + b.

    s is a learned sign (+-1, through the tanh surrogate), BN a one-channel batch normalisation
    with PyTorch's eps = 1e-5 and momentum 0.1, offset a learned scalar.
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.sign_quantizer = quantizers.TanhSign()
        self.batch_norm = tf.keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="bn")
        self.flatten = tf.keras.layers.Flatten()
        self.dense = tf.keras.layers.Dense(self.num_classes, name="fc")

    def build(self, input_shape):
        channels = int(input_shape[4])
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones")
        self.offset = self.add_weight(name="offset", shape=(), initializer="zeros")
        self.batch_norm.build((None, int(input_shape[2]), int(input_shape[3]), channels))
        self.dense.build((None, int(input_shape[2] * input_shape[3] * channels)))
        super().build(input_shape)

    def call(self, readouts, training=None):
        planes, batch, windows = _merge_windows(readouts)
        z = self.sign_quantizer(self.scale) * planes
        z = tf.tanh(self.batch_norm(z, training=training)) - self.offset
        return _mean_over_windows(self.dense(self.flatten(z)), batch, windows, self.num_classes)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], self.num_classes])

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


DECODERS = {"linear": LinearDecoder, "reference": ReferenceDecoder}
