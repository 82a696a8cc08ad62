"""Make TensorFlow resolve `tf.keras` to Keras 2 (tf-keras) before anything uses it.

larq 0.14 only works with Keras 2. TensorFlow >= 2.16 picks the Keras version the first time
`tf.keras` is touched, from the environment variable TF_USE_LEGACY_KERAS, so the variable must be
set before that moment. Every module of this package imports tensorflow through here.
"""

import os

_FIX = (
    "Import pixelrnn_tf before anything touches tf.keras (e.g. put `import pixelrnn_tf` first), or start Python with "
    "TF_USE_LEGACY_KERAS=1 in the environment."
)


class KerasVersionError(ImportError):
    """tf.keras already resolved to Keras 3 before pixelrnn_tf could select Keras 2."""


def _ensure_legacy_keras():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    # TensorFlow's C++ start-up chatter (no GPU found, oneDNN notes) says nothing to our users;
    # whoever wants it sets TF_CPP_MIN_LOG_LEVEL themselves.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    layer_module = tf.keras.layers.Layer.__module__
    if not layer_module.startswith("tf_keras"):
        raise KerasVersionError(
            "pixelrnn_tf needs Keras 2 (the tf-keras package), but TensorFlow was imported and "
            f"tf.keras already resolved to Keras 3 ({layer_module}). " + _FIX
        )
    return tf


tf = _ensure_legacy_keras()
keras = tf.keras
