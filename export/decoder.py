"""The off-sensor half of a trained model as a full-integer int8 TFLite model for TFLite Micro.

The exported decoder takes ONE window's readout (1, H', W', C) and returns that window's logits
(1, classes). The trained decoder averages the logits of the N = T/K windows of a clip; on the
device that average is taken outside the model (dequantise each window's int8 logits with the
output scale and zero point, then average), so one small model serves any clip length.

The reference decoder z = tanh(BN(s o)) - offset, logits = A z + b (So et al. 2024) is rewritten
before conversion into ops TFLite Micro implements, with the same float function:
    BN(s o) = a o + c,   a = s gamma / sqrt(var + eps),   c = beta - gamma mu / sqrt(var + eps)
    A (tanh(a o + c) - offset) + b = A tanh(a o + c) + (b - offset * sum_i A_i)
which lowers to MUL, ADD, TANH, RESHAPE, FULLY_CONNECTED.
"""

import numpy as np

from pixelrnn_tf._keras import tf
from pixelrnn_tf.decoders import LinearDecoder, ReferenceDecoder
from pixelrnn_tf.models import DECODER_LAYER, READOUT_LAYER

from export.errors import ExportError


def readout_shape(model):
    """(H', W', C) of one window's readout."""
    return tuple(int(d) for d in model.get_layer(READOUT_LAYER).output.shape[2:])


def window_decoder(model):
    """A float Keras model: one window's readout (1, H', W', C) -> that window's logits, with the
    trained decoder's weights (linear, or reference rewritten as in the module docstring)."""
    decoder = model.get_layer(DECODER_LAYER)
    shape = readout_shape(model)
    readout = tf.keras.Input(shape, batch_size=1, name="readout")
    kernel, bias = (w.numpy().astype(np.float64) for w in decoder.dense.weights)
    if isinstance(decoder, LinearDecoder):
        x = readout
    elif isinstance(decoder, ReferenceDecoder):
        bn = decoder.batch_norm
        sign = float(decoder.sign_quantizer(decoder.scale).numpy())
        inv_sigma = bn.gamma.numpy().astype(np.float64) / np.sqrt(bn.moving_variance.numpy().astype(np.float64) + bn.epsilon)
        scale = sign * inv_sigma
        shift = bn.beta.numpy().astype(np.float64) - bn.moving_mean.numpy().astype(np.float64) * inv_sigma
        bias = bias - float(decoder.offset.numpy()) * kernel.sum(axis=0)
        x = readout * tf.constant(scale.astype(np.float32)) + tf.constant(shift.astype(np.float32))
        x = tf.keras.layers.Activation("tanh", name="tanh")(x)
    else:
        raise ExportError(f"The exporter knows the linear and reference decoders, not {type(decoder).__name__}.")
    x = tf.keras.layers.Flatten(name="flatten")(x)
    dense = tf.keras.layers.Dense(kernel.shape[1], name="fc")
    logits = dense(x)
    dense.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return tf.keras.Model(readout, logits, name=f"{model.name}_decoder")


def float_logits(model, readouts):
    """Logits of the trained decoder on readouts (B, N, H', W', C): the float oracle."""
    return model.get_layer(DECODER_LAYER)(tf.constant(readouts, tf.float32), training=False).numpy()


def convert_int8(window_model, windows, max_samples=256):
    """Full-integer int8 post-training quantisation with `windows` (n, H', W', C) as the
    representative data set; int8 input and output, builtin int8 ops only. Returns the
    flatbuffer bytes."""
    windows = np.asarray(windows, dtype=np.float32)
    if len(windows) == 0:
        raise ExportError("The representative data set is empty.")
    step = max(1, len(windows) // max_samples)
    samples = windows[::step][:max_samples]

    def representative():
        for window in samples:
            yield [window[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(window_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    # One scale per weight tensor, not per output unit: TFLite Micro and LiteRT then requantise the
    # FULLY_CONNECTED output through the same single multiplier, which is where they round alike.
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    return converter.convert()
