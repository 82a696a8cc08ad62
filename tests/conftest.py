"""Shared test helpers. pixelrnn_tf is imported first: it selects Keras 2 for TensorFlow."""

import numpy as np
import pytest

import pixelrnn_tf  # noqa: F401


def xcorr_same(image, kernel):
    """Numpy oracle: 2-D cross-correlation with zero padding (kernel_size - 1) / 2, as PyTorch's
    conv2d and SCAMP-5's shift-and-add compute it. image (H, W), kernel (k, k)."""
    k = kernel.shape[0]
    pad = k // 2
    padded = np.pad(image, pad)
    out = np.zeros_like(image, dtype=np.float64)
    for dy in range(k):
        for dx in range(k):
            out += kernel[dy, dx] * padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
    return out


def np_sign(x):
    return np.where(x >= 0, 1.0, -1.0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
