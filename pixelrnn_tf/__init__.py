"""pixelrnn-tf: design, train, emulate and deploy in-pixel neural networks for focal-plane
sensor-processors (SCAMP-5 and successors), after PixelRNN (So et al., CVPR 2024).

Importing this package selects Keras 2 (tf-keras) for TensorFlow, which larq needs; see
`pixelrnn_tf._keras`.
"""

from pixelrnn_tf._keras import KerasVersionError, tf  # noqa: F401  (must run first)

from pixelrnn_tf import accounting, cells, decoders, encoders, quantizers, tables  # noqa: E402
from pixelrnn_tf.accounting import InPixelAccount, account  # noqa: E402
from pixelrnn_tf.config import ConfigError, ModelConfig  # noqa: E402
from pixelrnn_tf.models import build_model, load_model, sensor_model  # noqa: E402
from pixelrnn_tf.tables import InPixelTables, in_pixel_tables  # noqa: E402
from pixelrnn_tf.tree import TreeNetwork, build_tree  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "InPixelAccount",
    "InPixelTables",
    "KerasVersionError",
    "ModelConfig",
    "TreeNetwork",
    "account",
    "accounting",
    "build_model",
    "build_tree",
    "cells",
    "decoders",
    "encoders",
    "in_pixel_tables",
    "load_model",
    "quantizers",
    "sensor_model",
    "tables",
]
