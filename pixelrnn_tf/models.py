"""Model builders: clips -> in-pixel encoder -> readout every K frames -> decoder -> logits."""

from pixelrnn_tf import quantizers
from pixelrnn_tf._keras import tf
from pixelrnn_tf.cells import CELLS
from pixelrnn_tf.config import ModelConfig
from pixelrnn_tf.decoders import DECODERS
from pixelrnn_tf.encoders import InPixelCNN
from pixelrnn_tf.readout import FramePool, InPixelRecurrence, SensorReadout

ENCODER_LAYER = "in_pixel_cnn"
RECURRENCE_LAYER = "recurrence"
READOUT_LAYER = "readout"
RNN_INPUT_POOL_LAYER = "rnn_input_pool"
DECODER_LAYER = "decoder"


def _quantizer(spec):
    return quantizers.get(spec)


def build_cell(config):
    """The recurrent cell that `config` describes."""
    common = dict(
        height=config.height // config.rnn_input_pool,
        width=config.width // config.rnn_input_pool,
        kernel_size=config.kernel_size,
        binary=config.binary,
        kernel_quantizer=_quantizer(config.kernel_quantizer),
        activation_quantizer=_quantizer(config.activation_quantizer),
        zero_point=config.zero_point,
        gate_noise_stddev=config.gate_noise_stddev,
        noise_at_inference=config.noise_at_inference,
        name=f"{config.arch}_cell",
    )
    if config.arch == "pixelrnn":
        common.update(forget_threshold=config.forget_threshold, output_threshold=config.output_threshold)
    if config.arch == "diff":
        common.update(threshold=config.diff_threshold)
    return CELLS[config.arch](**common)


def build_model(config=None, **overrides):
    """A Keras model for clips of shape (batch, T, H, W, 1), from a ModelConfig, a dict or keywords.

    >>> model = build_model(arch="pixelrnn", cnn_layers=1, num_classes=9)
    """
    config = ModelConfig.from_any(config, **overrides)
    # T is left open: any clip length that is a multiple of K runs (logits average over windows).
    clips = tf.keras.Input((None, config.height, config.width, 1), name="clips")
    x = clips
    if config.has_cnn:
        x = InPixelCNN(
            num_layers=config.cnn_layers,
            filters=config.filters,
            kernel_size=config.kernel_size,
            pool_size=config.pool_size,
            binary=config.binary,
            kernel_quantizer=_quantizer(config.kernel_quantizer),
            activation_quantizer=_quantizer(config.activation_quantizer),
            zero_point=config.zero_point,
            learned_input_threshold=config.learned_input_threshold,
            threshold_init=config.cnn_threshold_init,
            noise_stddev=config.cnn_noise_stddev,
            noise_at_inference=config.noise_at_inference,
            batchnorm=config.cnn_batchnorm,
            name=ENCODER_LAYER,
        )(x)
    if config.rnn_input_pool > 1:
        x = FramePool(config.rnn_input_pool, name=RNN_INPUT_POOL_LAYER)(x)
    readouts = InPixelRecurrence(build_cell(config), window=config.window, name=RECURRENCE_LAYER)(x)
    readouts = SensorReadout(
        pool_size=config.readout_pool,
        noise_stddev=config.readout_noise_stddev,
        noise_at_inference=config.noise_at_inference,
        name=READOUT_LAYER,
    )(readouts)
    logits = DECODERS[config.decoder](config.num_classes, name=DECODER_LAYER)(readouts)
    precision = "binary" if config.binary else "float"
    layers = f"_cnn{config.cnn_layers}" if config.has_cnn else ""
    return tf.keras.Model(clips, logits, name=f"{config.arch}_{precision}{layers}")


def sensor_model(model):
    """The part of `model` that runs on the sensor: clips -> readouts (what leaves the chip)."""
    return tf.keras.Model(model.inputs, model.get_layer(READOUT_LAYER).output, name=f"{model.name}_sensor")


def load_model(path):
    """Load a `.keras` model saved from pixelrnn-tf (all custom layers are registered); files of
    pixelrnn-tf 0.1 are converted on the way in (pixelrnn_tf.legacy)."""
    from pixelrnn_tf import legacy

    if legacy.is_legacy_file(path):
        return legacy.load_legacy_model(path)
    return tf.keras.models.load_model(path)
