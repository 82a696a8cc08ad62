"""What an in-pixel model costs the sensor: parameters, readout bandwidth, per-pixel memory, and
whether it fits SCAMP-5.

Definitions (So et al., CVPR 2024, Table 2):
- in-pixel parameters: the values the sensor program stores: binary kernel entries and the
  thresholds of the CNN (and the learned input / forget-gate thresholds when enabled). Latent
  weights and zero-points exist only in training and are not counted.
- readout values per window: numbers leaving the sensor per K frames. The raw camera reads the
  whole 256x256 array every frame (downsampling happens off the sensor).
- memory bits per pixel: bits of intermediate features that one forward pass holds at once per
  pixel of the 64x64 working grid (one 4x4 macropixel of 16 processing elements): the state
  carried from frame to frame plus the largest transient of any stage (the CNN's 16 analog conv
  outputs, or one analog pre-activation per gate). Binary values count 1 bit, ternary 2, analog
  8, full-precision 32.
- SCAMP-5 offers 32 bytes (256 bits) of feature storage per 4x4 macropixel (paper, section 4).
"""

import dataclasses

from pixelrnn_tf.cells import RawCameraCell
from pixelrnn_tf.models import ENCODER_LAYER, READOUT_LAYER, RECURRENCE_LAYER

SCAMP5_ARRAY = (256, 256)
SCAMP5_MACROPIXEL = 4
SCAMP5_BITS_PER_MACROPIXEL = 32 * 8


@dataclasses.dataclass(frozen=True)
class SensorBudget:
    """Feature storage and size of a pixel processor array."""

    name: str = "SCAMP-5"
    array: tuple = SCAMP5_ARRAY
    macropixel: int = SCAMP5_MACROPIXEL
    bits_per_macropixel: int = SCAMP5_BITS_PER_MACROPIXEL


SCAMP5 = SensorBudget()


@dataclasses.dataclass(frozen=True)
class InPixelAccount:
    in_pixel_parameters: int
    readout_values_per_window: int
    window: int
    memory_bits_per_pixel: int
    raw_values_per_window: int
    fits_scamp5: bool
    reasons: tuple

    @property
    def bandwidth_reduction_vs_raw(self):
        return self.raw_values_per_window / self.readout_values_per_window

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["reasons"] = list(self.reasons)
        values["bandwidth_reduction_vs_raw"] = self.bandwidth_reduction_vs_raw
        return values


def _optional_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def account(model, sensor=SCAMP5):
    """Account for a model built by `pixelrnn_tf.build_model` (or loaded from `.keras`)."""
    encoder = _optional_layer(model, ENCODER_LAYER)
    recurrence = model.get_layer(RECURRENCE_LAYER)
    readout = model.get_layer(READOUT_LAYER)
    cell, window = recurrence.cell, recurrence.window

    parameters = cell.in_pixel_parameters() + (encoder.in_pixel_parameters() if encoder else 0)
    sensor_frame = sensor.array[0] * sensor.array[1]
    if isinstance(cell, RawCameraCell):
        readout_values = cell.sensor_height * cell.sensor_width * window
    else:
        _, _, h, w, c = readout.output_shape
        readout_values = int(h * w * c)
    transient = max(cell.transient_bits_per_pixel(), encoder.transient_bits_per_pixel() if encoder else 0)
    memory = cell.state_bits_per_pixel() + transient

    reasons = []
    if memory > sensor.bits_per_macropixel:
        reasons.append(
            f"needs {memory} bits of features per {sensor.macropixel}x{sensor.macropixel} macropixel; "
            f"{sensor.name} has {sensor.bits_per_macropixel} ({sensor.bits_per_macropixel // 8} bytes)"
            + (": use binary weights and activations" if not cell.binary else "")
        )
    grid = (sensor.array[0] // sensor.macropixel, sensor.array[1] // sensor.macropixel)
    if cell.height > grid[0] or cell.width > grid[1]:
        reasons.append(
            f"a {cell.height}x{cell.width} working grid needs more than the {grid[0]}x{grid[1]} "
            f"macropixels of the {sensor.array[0]}x{sensor.array[1]} array"
        )
    return InPixelAccount(
        in_pixel_parameters=int(parameters),
        readout_values_per_window=int(readout_values),
        window=int(window),
        memory_bits_per_pixel=int(memory),
        raw_values_per_window=int(sensor_frame * window),
        fits_scamp5=not reasons,
        reasons=tuple(reasons),
    )
