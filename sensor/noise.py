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
1.2/3.3 and 13.4/12.8 (std) units, in the emulator with one draw per macro. That model is
`published_noise()`.

The `scamp5` preset (sensor/presets/scamp5.json, `scamp5_noise()`) adds what the real chip's
readouts show and the per-operation model does not: `pixelrnn calibrate-noise` fitted it to the
SCAMP-5 readouts of the PixelRNN authors' Cambridge model (30 of 45 clips; the other 15 are held
out, figures in RESULTS.md). Its fields beyond the published ones:

    comparator_stddev     6.0 sensor units: every comparison (CNN threshold, forget gate) sees
                          A + N(0, s^2); the value whose averaged emulations predicted the
                          calibration clips best (a grid of 0, 3, 6, 9; the differences are small)
    readout_shift         (-3, 4): the chip's readout shows the array 3 rows up, 4 columns right
                          (the best alignment of the exact emulation, consistent over clips +-1)
    readout_gain, _offset 0.33, -0.14: least squares with a per-pixel pattern (a fixed effect)
    readout_fixed_pattern 64x64 model units, std 3.0; whole columns off (the first by -11)
    readout_stddev        4.3 model units: Gaussian, fresh per readout, the variance the chip's
                          readouts have beyond what the model predicts
The readout then saturates at the 8-bit codes' range, (code - 127) / 10 for codes 0..255.
"""

import dataclasses
import functools
import json
import math
from pathlib import Path
from typing import Tuple

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
    # fitted to a real chip's readouts (sensor.calibration; the module docstring gives sources)
    comparator_stddev: float = 0.0  # sensor units: Gaussian noise of every comparison, fresh each time
    readout_gain: float = 1.0  # readout value := gain * value + offset + pattern[y, x] + N(0, readout_stddev^2)
    readout_offset: float = 0.0  # model units
    readout_shift: Tuple[int, int] = (0, 0)  # (rows, cols) PEs: the readout of PE (y, x) shows PE (y + rows, x + cols)
    readout_stddev: float = 0.0  # model units
    readout_fixed_pattern: Tuple[Tuple[float, ...], ...] = ()  # (h, w) model units per readout pixel; () none

    def __post_init__(self):
        # JSON gives lists: hold tuples, so that the model stays hashable and immutable
        object.__setattr__(self, "readout_shift", tuple(int(v) for v in self.readout_shift))
        object.__setattr__(self, "readout_fixed_pattern", tuple(tuple(float(v) for v in row) for row in self.readout_fixed_pattern))
        for name in ("temporal_stddev", "signal_stddev", "fixed_pattern_stddev", "drift_gain", "comparator_stddev", "readout_stddev"):
            if getattr(self, name) < 0:
                raise ConfigError(f"NoiseModel.{name} must be >= 0, got {getattr(self, name)}.")
        if len(self.readout_shift) != 2:
            raise ConfigError(f"NoiseModel.readout_shift must be (rows, cols), got {self.readout_shift}.")
        if len({len(row) for row in self.readout_fixed_pattern}) > 1:
            raise ConfigError("NoiseModel.readout_fixed_pattern must be a rectangular (height, width) table.")
        if not 0 <= self.drift_gain < 1:
            raise ConfigError(f"NoiseModel.drift_gain must be in [0, 1), got {self.drift_gain}.")
        if self.decay_time_s <= 0:
            raise ConfigError(f"NoiseModel.decay_time_s must be > 0, got {self.decay_time_s}.")

    @property
    def random_writes(self):
        """Whether analog writes draw random numbers (temporal noise)."""
        return self.temporal_stddev > 0 or self.signal_stddev > 0

    @property
    def random(self):
        """Whether emulation draws random numbers anywhere (writes, comparisons, readout)."""
        return self.random_writes or self.comparator_stddev > 0 or self.readout_stddev > 0

    @property
    def readout_stage(self):
        """Whether the readout is more than the array's values (gain, offset, shift, pattern, noise)."""
        return (self.readout_gain, self.readout_offset, self.readout_shift, self.readout_stddev, self.readout_fixed_pattern) != (
            1.0, 0.0, (0, 0), 0.0, ())

    @property
    def enabled(self):
        return (
            any((self.drift_offset, self.drift_gain, self.temporal_stddev, self.signal_stddev, self.fixed_pattern_stddev, self.comparator_stddev))
            or math.isfinite(self.decay_time_s)
            or self.readout_stage
        )

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


def published_noise():
    """The per-bus-operation model fitted to the published SCAMP-5 measurements (module
    docstring). Decay: tau = 1 s, so a value held for a 3.5 ms frame loses 0.35% (SCAMP-5 registers
    are refreshed by use; the chip's published leakage is of this order, and no measurement above
    depends on it). No comparator or readout terms: those come from `pixelrnn calibrate-noise`."""
    return NoiseModel(
        drift_offset=0.4,
        drift_gain=0.0053,
        temporal_stddev=0.3,
        signal_stddev=0.007,
        fixed_pattern_stddev=0.08,
        decay_time_s=1.0,
    )


PRESET = Path(__file__).parent / "presets" / "scamp5.json"


@functools.lru_cache(maxsize=None)
def scamp5_noise():
    """The `scamp5` preset: the published per-operation terms plus the comparator and readout terms
    fitted by `pixelrnn calibrate-noise` to the real SCAMP-5 readouts of the PixelRNN authors'
    Cambridge model (sensor/presets/scamp5.json; RESULTS.md has the fit and its held-out figures)."""
    return _read_noise_file(PRESET)


def _read_noise_file(path):
    try:
        values = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None
    return NoiseModel.from_dict(values)


def resolve_noise(spec, array_noise=None):
    """A NoiseModel from None / 'none' (exact), 'scamp5' (the calibrated preset), 'published' (the
    per-operation terms alone), 'array' (the array's own model), a NoiseModel, a mapping, or a
    JSON file path."""
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
    if spec == "published":
        return published_noise()
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"--noise {spec!r}: not 'none', 'scamp5', 'published' or a JSON file of NoiseModel fields.")
    return _read_noise_file(path)
