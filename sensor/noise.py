"""Analog imperfections of a pixel processor array, as one seeded, configurable model.

Every analog bus operation on SCAMP-5 moves charge between capacitors, and each move is slightly
wrong. Per bus operation, a value v becomes

    v <- v - (alpha + beta v)          signal-dependent downward drift (charge injection, leak
                                        towards the fixed point v* = -alpha/beta)
         + f_p                          fixed-pattern offset of pixel p, f_p ~ N(0, sigma_fp^2),
                                        drawn once per chip
         + e,  e ~ N(0, (sigma_0 + sigma_1 |v|)^2)    temporal noise, fresh every operation

then saturates at the array's analog range. A value held in a register also decays towards 0,
v(t) = v(0) exp(-t / tau), between the moment it is written and the moment it is read.

A macro of n bus operations is emulated with ONE random draw: the drift recursion composes
exactly, v_n = v* + (v_0 - v*) (1 - beta)^n, the fixed-pattern offsets add up to
f_p (1 - (1 - beta)^n) / beta, and the n temporal draws are replaced by one Gaussian of the same
variance, (sigma_0 + sigma_1 |v_n|)^2 (1 - (1 - beta)^(2n)) / (1 - (1 - beta)^2). Drawing random
numbers dominates emulation time, so this one-draw rule is what makes noisy emulation affordable.

Calibration of `scamp5_noise()` (see tests/test_sensor_noise.py): the public SCAMP-5
measurements of an identity kernel of 9 bus operations applied 1..32 times to uniform inputs
0..120 report a per-pixel standard deviation of about 1-3 units after one pass and 13-18 after 32,
and a mean that falls by about 4.5 (input 0) to 8.8 (input 120) units after one pass and by about
55 to 149 after 32. A grid search of (alpha, beta, sigma_0, sigma_1, sigma_fp) against those
eight figures gave the preset; it reproduces them as -3.5/-9.1 and -59/-153 (means) and
1.2/3.3 and 13.4/12.8 (std) units, in the emulator with one draw per macro.
"""

import dataclasses
import json
import math
from pathlib import Path

from pixelrnn_tf.config import ConfigError, dataclass_from_dict


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """Per-bus-operation analog noise (module docstring gives the equations). All zeros: exact."""

    drift_offset: float = 0.0  # alpha, units per bus operation
    drift_gain: float = 0.0  # beta, per bus operation
    temporal_stddev: float = 0.0  # sigma_0, units
    signal_stddev: float = 0.0  # sigma_1, units per unit of |v|
    fixed_pattern_stddev: float = 0.0  # sigma_fp, units per bus operation
    decay_time_s: float = math.inf  # tau; inf: no decay

    def __post_init__(self):
        for name in ("temporal_stddev", "signal_stddev", "fixed_pattern_stddev", "drift_gain"):
            if getattr(self, name) < 0:
                raise ConfigError(f"NoiseModel.{name} must be >= 0, got {getattr(self, name)}.")
        if not 0 <= self.drift_gain < 1:
            raise ConfigError(f"NoiseModel.drift_gain must be in [0, 1), got {self.drift_gain}.")
        if self.decay_time_s <= 0:
            raise ConfigError(f"NoiseModel.decay_time_s must be > 0, got {self.decay_time_s}.")

    @property
    def random(self):
        """Whether emulation needs random numbers (temporal noise)."""
        return self.temporal_stddev > 0 or self.signal_stddev > 0

    @property
    def enabled(self):
        return any(
            (self.drift_offset, self.drift_gain, self.temporal_stddev, self.signal_stddev, self.fixed_pattern_stddev)
        ) or math.isfinite(self.decay_time_s)

    def drift_terms(self, n):
        """(gain, offset) such that n bus operations map v to gain * v + offset (no noise)."""
        q = 1.0 - self.drift_gain
        if self.drift_gain == 0:
            return 1.0, -self.drift_offset * n
        fixed_point = -self.drift_offset / self.drift_gain
        return q**n, fixed_point * (1.0 - q**n)

    def accumulated(self, n):
        """(sum_k q^k, sqrt(sum_k q^2k)) over k < n: how fixed-pattern offsets and temporal draws
        of n successive operations add up under the drift's damping q = 1 - beta."""
        q = 1.0 - self.drift_gain
        if self.drift_gain == 0:
            return float(n), math.sqrt(n)
        return (1.0 - q**n) / (1.0 - q), math.sqrt((1.0 - q ** (2 * n)) / (1.0 - q * q))

    def decay(self, seconds):
        return 1.0 if not math.isfinite(self.decay_time_s) else math.exp(-seconds / self.decay_time_s)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Build from a mapping; an unknown key is a ConfigError naming the nearest known one."""
        return dataclass_from_dict(cls, values, "noise")


NO_NOISE = NoiseModel()


def scamp5_noise():
    """The calibrated SCAMP-5 preset (module docstring). Decay: tau = 1 s, so a value held for a
    3.5 ms frame loses 0.35% (SCAMP-5 registers are refreshed by use; the chip's published
    leakage is of this order, and no measurement above depends on it)."""
    return NoiseModel(
        drift_offset=0.4,
        drift_gain=0.0053,
        temporal_stddev=0.3,
        signal_stddev=0.007,
        fixed_pattern_stddev=0.08,
        decay_time_s=1.0,
    )


def resolve_noise(spec, array_noise=None):
    """A NoiseModel from None / 'none' (exact), 'scamp5' (the preset), 'array' (the array's own
    model), a NoiseModel, a mapping, or a JSON file path."""
    if spec is None or spec == "none":
        return NO_NOISE
    if isinstance(spec, NoiseModel):
        return spec
    if isinstance(spec, dict):
        return NoiseModel.from_dict(spec)
    if spec == "scamp5":
        return scamp5_noise()
    if spec == "array":
        return array_noise or NO_NOISE
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"--noise {spec!r}: not 'none', 'scamp5' or a JSON file of NoiseModel fields.")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None
    return NoiseModel.from_dict(values)
