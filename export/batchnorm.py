"""Batch-norm folding for in-pixel layers that end in a threshold and a sign (Liu et al. 2022).

An in-pixel layer computes y = sign(BN(x) - theta) with BN(x) = gamma (x - mu) / sqrt(var + eps)
+ beta per channel. The sensor can only add or subtract a constant before its comparator, so the
exporter folds BN and theta into one threshold t per channel and a comparison direction:

    gamma > 0:  y = +1  iff  x >= t          t = mu + (theta - beta) sqrt(var + eps) / gamma
    gamma < 0:  y = +1  iff  x <= t          (dividing by a negative scale flips the comparison)
    gamma = 0:  y = sign(beta - theta), whatever x (t = -inf, never flipped, or +inf)

sign(0) = +1 as on SCAMP-5's comparator, so a tie x = t gives +1 in both directions, exactly as
BN(x) - theta = 0 gives +1. A per-channel t is the bias map of the sensor program: one constant
per processing element of the macropixel.
"""

import numpy as np


def fold_batchnorm(gamma, beta, mean, variance, epsilon, theta):
    """Fold BN (gamma, beta, moving mean, moving variance, epsilon) and a threshold theta (scalar
    or per channel) into per-channel thresholds and flips. Returns (threshold, flip): float64 and
    bool arrays broadcast to the channel shape. Evaluate with `folded_sign`."""
    gamma, beta, mean, variance, theta = (
        np.asarray(v, dtype=np.float64) for v in (gamma, beta, mean, variance, theta)
    )
    gamma, beta, mean, variance, theta = np.broadcast_arrays(gamma, beta, mean, variance, theta)
    sigma = np.sqrt(variance + float(epsilon))
    constant = np.where(beta - theta >= 0, -np.inf, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        threshold = np.where(gamma != 0, mean + (theta - beta) * sigma / gamma, constant)
    return threshold, gamma < 0


def folded_sign(x, threshold, flip):
    """+-1 from a folded threshold: +1 where x >= t (or x <= t where flipped), channels last."""
    x = np.asarray(x, dtype=np.float64)
    keep = np.where(flip, x <= threshold, x >= threshold)
    return np.where(keep, 1.0, -1.0)


def sensor_threshold(threshold, input_white):
    """A folded threshold in the sensor's units, round(t * input_white); infinite thresholds (a
    channel whose output is constant) stay infinite and are written as the range's end by the
    caller."""
    return np.round(np.asarray(threshold, dtype=np.float64) * float(input_white))
