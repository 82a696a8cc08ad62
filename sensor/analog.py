"""Analog registers at trace time: planes written inside a box, and reads with their decay.

An analog write is emulated only inside the bounding box of the pixels its FLAG can select
(sensor.digital): the recurrent step, gated to two elements, costs 2/16 of the array. A run of
writes confined to one box works on the small plane (`Boxed`), and the full plane is assembled
once, when something reads outside the box. Analog planes keep a written value before
saturation; every reader clips it (the register holds the clipped value).
"""

import numpy as np

from sensor.instructions import OPS
from sensor.planes import crop, paste

# the analog macros: they write an analog register where FLAG is set
ANALOG_OPS = frozenset(op for op, spec in OPS.items() if spec.dst == "analog")


class Boxed:
    """An analog plane whose `box` was last written as `sub` and not yet pasted into `base`."""

    def __init__(self, base, box, sub):
        self.base, self.box, self.sub = base, box, sub


class AnalogPlanes:
    """The analog registers of one execution: their planes in `state` (shared with the digital
    registers), when each was last written (`written_at`, in instruction words since the section
    started, for decay), and how to read and write them over a box (None: the whole array)."""

    def __init__(self, state, shape, config, noise, kernels):
        self.state, self.shape = state, shape
        self.config, self.noise, self.kernels = config, noise, kernels
        self.full_box = (0, shape[0], 0, shape[1])
        self.written_at = {}

    def materialize(self, register):
        """The register's whole plane, pasted together (and kept) if it was written in a box."""
        value = self.state[register]
        if isinstance(value, Boxed):
            value = self.state[register] = paste(value.base, value.sub, value.box, self.shape)
        return value

    def view(self, register, box):
        """The plane of an analog register over box (None: the whole array)."""
        value = self.state[register]
        if isinstance(value, Boxed) and box is not None:
            y0, y1, x0, x1 = value.box
            if y0 <= box[0] and box[1] <= y1 and x0 <= box[2] and box[3] <= x1:
                return value.sub[:, box[0] - y0 : box[1] - y0, box[2] - x0 : box[3] - x0]
        return crop(self.materialize(register), box)

    def put(self, register, sub, box):
        """Write sub as the register's plane over box."""
        if box is None or box == self.full_box:
            self.state[register] = sub
        else:
            value = self.state[register]
            base = value.base if isinstance(value, Boxed) and value.box == box else self.materialize(register)
            self.state[register] = Boxed(base, box, sub)

    def decay_factor(self, register, at):
        """How much of its value `register` keeps when read at clock `at`."""
        if not np.isfinite(self.noise.decay_time_s):
            return 1.0
        return self.noise.decay(self.config.seconds(at - self.written_at.get(register, 0)))

    def read(self, register, at, box=None):
        """The register's value as read at clock `at`: clipped to the range, decayed."""
        value = self.view(register, box)
        if self.config.kind(register) == "analog":
            value = self.kernels.clip(value)  # analog planes keep values before saturation
        factor = self.decay_factor(register, at)
        return value * factor if factor != 1.0 else value
