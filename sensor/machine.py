"""The pixel processor array described as data: size, registers, value range, costs, clock, noise.

One `ArrayConfig` is one machine. `Scamp5()` is the SCAMP-5 vision chip (Dudek and Carey); a
larger array, one with more registers or a future stacked sensor is another instance, and every
program, checker and executor reads the machine from here rather than from constants.

Costs are counted in instruction words. An analog macro costs the bus operations it expands to on
SCAMP-5 (mov/add/sub/neg/movx 2, abs 6, div2 5); a digital AND is 4 words, every other digital
operation one, and a digital shift of n pixels n words (the expansions of the SCAMP-5d library's
`scamp5_kernel_api` macros). At `clock_hz` one word takes 1/clock_hz seconds.

Words are not all of a frame's time on the chip: the controller (the SCAMP-5d's ARM M0) issues the
words as kernels, and every kernel launch and every library call that sets the DAC
(`scamp5_load_in`) or an address pattern (`scamp5_load_pattern`) costs it about `call_s`; the
readout leaves over USB at `link_bytes_per_s`. `sensor.program.Program.chip_time` adds the three
(RESULTS.md derives the figures from the authors' frame loop and its 3.5 ms).
"""

import dataclasses
from types import MappingProxyType
from typing import Mapping, Optional, Tuple

from sensor.noise import NoiseModel, scamp5_noise

SCAMP5_BUS_OPS = MappingProxyType(
    {
        "bus": 1,  # one analog bus transfer: dst := -(sum of sources)
        "mov": 2,
        "add": 2,
        "sub": 2,
        "neg": 2,
        "movx": 2,
        "abs": 6,
        "div2": 5,
        "in": 1,  # load a constant through the bus
        "input": 2,  # sample the photodiode into a register (get_image)
        "where": 1,  # comparator into FLAG
        "and": 4,  # digital AND (the other digital ops are 1 word)
    }
)


@dataclasses.dataclass(frozen=True)
class ArrayConfig:
    """A focal-plane pixel processor array.

    height, width: processing elements (PEs); powers of two so that row/column address patterns
        (SCAMP-5's load_pattern) can name element blocks.
    analog_registers: general analog registers; news: the neighbour-exchange register that the
        analog macros use as scratch (a program may read it but not allocate it).
    digital_registers: 1-bit registers; flag: the FLAG register that gates analog writes.
    analog_min, analog_max: saturation limits of an analog value, in signed 8-bit units.
    analog_bits: bits of signal an analog register holds (what a model's memory accounting
        charges for one analog value).
    macropixel: side of the block of PEs that holds one pixel of a model's working grid (4:
        the 16 PEs of a 4x4 block compute the 16 CNN channels of one pixel).
    feature_bits_per_macropixel: storage for intermediate features per macropixel (SCAMP-5:
        32 bytes, PixelRNN section 4); a model whose per-pixel memory exceeds it does not fit.
    bus_ops: instruction words per analog macro (see module docstring).
    clock_hz: instruction words per second (SCAMP-5: 10 MHz, Carey et al. 2013).
    call_s: controller time per kernel launch or library call (SCAMP-5d: about 1.3 us, an
        estimate fitted to the authors' 3.5 ms frame; no published figure exists).
    link_bytes_per_s: readout bandwidth to the host (SCAMP-5d USB 2.0: about 10 MB/s, an estimate).
    edge_value: what a neighbour read beyond the array edge returns (analog and digital).
    noise: the analog imperfections of this array when emulated with noise on.
    """

    name: str = "SCAMP-5"
    height: int = 256
    width: int = 256
    analog_registers: Tuple[str, ...] = ("A", "B", "C", "D", "E", "F")
    news: str = "NEWS"
    digital_registers: Tuple[str, ...] = tuple(f"R{i}" for i in range(13))
    flag: str = "FLAG"
    analog_min: float = -128.0
    analog_max: float = 127.0
    analog_bits: int = 8
    macropixel: int = 4
    feature_bits_per_macropixel: int = 32 * 8
    bus_ops: Mapping[str, int] = dataclasses.field(default_factory=lambda: SCAMP5_BUS_OPS)
    clock_hz: float = 10e6
    call_s: float = 1.3e-6
    link_bytes_per_s: float = 10e6
    edge_value: float = 0.0
    noise: Optional[NoiseModel] = None

    def __post_init__(self):
        for side in (self.height, self.width):
            if side < 1 or side & (side - 1):
                raise ValueError(f"{self.name}: array sides must be powers of two, got {self.height}x{self.width}.")
        if self.analog_min >= self.analog_max:
            raise ValueError(f"{self.name}: analog_min must be below analog_max.")
        if self.macropixel < 1 or self.height % self.macropixel or self.width % self.macropixel:
            raise ValueError(f"{self.name}: macropixel {self.macropixel} must divide the {self.height}x{self.width} array.")

    def kind(self, register):
        """'analog', 'digital' or None (not a physical register of this array)."""
        if register in self.analog_registers or register == self.news:
            return "analog"
        if register in self.digital_registers or register == self.flag:
            return "digital"
        return None

    def seconds(self, words):
        return words / self.clock_hz

    @property
    def grid(self):
        """(rows, columns) of macropixels: the largest working grid a model can use."""
        return self.height // self.macropixel, self.width // self.macropixel


def Scamp5(**changes):
    """The SCAMP-5 preset (256x256 PEs, A-F + NEWS, R0-R12 + FLAG, 10 MHz), with its calibrated
    analog noise. Keyword arguments replace fields, e.g. Scamp5(height=512, width=512)."""
    return dataclasses.replace(ArrayConfig(noise=scamp5_noise()), **changes)
