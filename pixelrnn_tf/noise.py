"""Analog noise injection for hardware-aware training.

SCAMP-5 computes with charges on capacitors, so every analog sum carries noise. Training with
Gaussian noise at the places where the chip adds it (before the CNN threshold, before the
forget-gate threshold, on the readout) makes a model that survives the real sensor
(PixelRNN section 3.3). Noise is on in training and off at inference unless asked for.
"""

from pixelrnn_tf._keras import tf


def check_stddev(name, stddev):
    stddev = float(stddev)
    if stddev < 0:
        raise ValueError(f"{name} must be >= 0 (a standard deviation), got {stddev}.")
    return stddev


def add_analog_noise(x, stddev, training, at_inference=False):
    """x + N(0, stddev^2) when training (or always, with at_inference); x unchanged otherwise."""
    if stddev <= 0 or not (training or at_inference):
        return x
    return x + tf.random.normal(tf.shape(x), stddev=stddev, dtype=x.dtype)
