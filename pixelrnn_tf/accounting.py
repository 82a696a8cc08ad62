"""What an in-pixel model costs a pixel processor array: parameters, readout bandwidth, per-pixel
memory, and whether it fits.

Definitions (So et al., CVPR 2024, Table 2):
- in-pixel parameters: the values the sensor program stores: binary kernel entries and the
  thresholds of the CNN (and the learned input / forget-gate thresholds when enabled). Latent
  weights and zero-points exist only in training and are not counted.
- readout values per window: numbers leaving the sensor per K frames. The raw camera reads the
  whole array every frame (downsampling happens off the sensor).
- memory bits per pixel: bits of intermediate features that one forward pass holds at once per
  pixel of the 64x64 working grid (one macropixel of processing elements): the state carried
  from frame to frame plus the largest transient of any stage (the CNN's 16 analog conv outputs,
  or one analog pre-activation per gate). Binary values count 1 bit, ternary 2, analog values
  the array's `analog_bits`, full-precision 32.

The array is described by data, not by constants here: pass `sensor.Scamp5()` (or any object
with `name`, `height`, `width`, `macropixel`, `feature_bits_per_macropixel` and `analog_bits`).
"""

import dataclasses

from pixelrnn_tf.cells import RawCameraCell
from pixelrnn_tf.models import ENCODER_LAYER, READOUT_LAYER, RECURRENCE_LAYER


@dataclasses.dataclass(frozen=True)
class InPixelAccount:
    """The figures of `account`; `sensor` names the array they were measured against."""

    in_pixel_parameters: int
    readout_values_per_window: int
    window: int
    memory_bits_per_pixel: int
    raw_values_per_window: int
    sensor: str
    sensor_bits_per_macropixel: int
    fits_sensor: bool
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


def account(model, array):
    """Account for a model built by `pixelrnn_tf.build_model` (or loaded from `.keras`) on
    `array`, e.g. `account(model, sensor.Scamp5())`."""
    encoder = _optional_layer(model, ENCODER_LAYER)
    recurrence = model.get_layer(RECURRENCE_LAYER)
    readout = model.get_layer(READOUT_LAYER)
    cell, window = recurrence.cell, recurrence.window
    analog_bits = int(array.analog_bits)

    parameters = cell.in_pixel_parameters() + (encoder.in_pixel_parameters() if encoder else 0)
    array_values = array.height * array.width
    if isinstance(cell, RawCameraCell):
        readout_values = array_values * window
    else:
        _, _, h, w, c = readout.output_shape
        readout_values = int(h * w * c)
    transient = max(
        cell.transient_bits_per_pixel(analog_bits), encoder.transient_bits_per_pixel(analog_bits) if encoder else 0
    )
    memory = cell.state_bits_per_pixel(analog_bits) + transient

    reasons = []
    budget, side = int(array.feature_bits_per_macropixel), int(array.macropixel)
    if memory > budget:
        reasons.append(
            f"needs {memory} bits of features per {side}x{side} macropixel; {array.name} has {budget} "
            f"({budget // 8} bytes)" + (": use binary weights and activations" if not cell.binary else "")
        )
    rows, columns = array.height // side, array.width // side
    if cell.height > rows or cell.width > columns:
        reasons.append(
            f"a {cell.height}x{cell.width} working grid needs more than the {rows}x{columns} "
            f"macropixels of the {array.height}x{array.width} array"
        )
    return InPixelAccount(
        in_pixel_parameters=int(parameters),
        readout_values_per_window=int(readout_values),
        window=int(window),
        memory_bits_per_pixel=int(memory),
        raw_values_per_window=int(array_values * window),
        sensor=str(array.name),
        sensor_bits_per_macropixel=budget,
        fits_sensor=not reasons,
        reasons=tuple(reasons),
    )
