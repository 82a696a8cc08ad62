"""The instruction set of a pixel processor array, with SCAMP-5's semantics. Instructions are data.

Every instruction acts on whole register planes at once (SIMD over the array).

Analog (values in signed 8-bit units; written only where FLAG is set, then saturated):
    bus(d, s0, s1, ...)  d := -(s0 + s1 + ...)      the analog bus: one transfer, with negation
    mov(d, s)            d := s                     = bus(NEWS, s); bus(d, NEWS)
    add(d, a, b)         d := a + b                 = bus(NEWS, a, b); bus(d, NEWS)
    sub(d, a, b)         d := a - b                 = bus(NEWS, a); bus(d, NEWS, b)
    neg(d, s)            d := -s
    abs_(d, s)           d := |s|
    div2(d, s)           d := s / 2
    movx(d, s, dir)      d := s of the neighbour in direction dir (beyond the edge: edge_value)
    in_(d, v)            d := v                     a constant
    input_(d, scale)     d := scale * image         photodiode sample (the frame, see executor)
mov, add and sub leave -(their first bus result) in NEWS, as their expansion does.

FLAG:
    where(s)             FLAG := s >= 0             the comparator (sign(0) = +1, as the model)
    all_()               FLAG := 1
    FLAG is a digital register: dmov(FLAG, r) gates by a bit plane, dmov(r, FLAG) keeps a result.

Digital (1-bit planes, never gated):
    dmov, dnot(d, s); dor, dnor, dand(d, a, b); dset(d), dclr(d)
    dshift(d, s, dir, steps)  d := s read `steps` pixels away in direction dir, 0 beyond the edge
    pattern(d, row, col, row_mask, col_mask)  d := 1 where (y | row_mask) == (row | row_mask) and
        (x | col_mask) == (col | col_mask): SCAMP-5's load_pattern, set bits of a mask are
        "don't care". With mask 63 and row 64 i it names the i-th band of 64 rows.

Readout:
    readout(s, region, scale, offset, pool)  emit scale * s[region] + offset, max-pooled by pool
        (region = (row, col, height, width)); the readout is what leaves the chip.

Direction `north` means "read from the PE above (row - 1)", so data moves south; east reads
column + 1. A program is a list of these; `sensor.program.Program` prints, counts, costs, checks
and allocates registers for it.
"""

import dataclasses
from typing import Optional, Tuple

DIRECTIONS = {"north": (-1, 0), "south": (1, 0), "west": (0, -1), "east": (0, 1)}


@dataclasses.dataclass(frozen=True)
class OpSpec:
    dst: Optional[str]  # kind of the destination: 'analog', 'digital', 'flag' or None
    srcs: str  # kind of every source: 'analog', 'digital', 'any' or ''
    cost: str  # key into ArrayConfig.bus_ops, or 'digital' (1 word), 'shift' (steps words), 'free'
    gated: bool = False


OPS = {
    "bus": OpSpec("analog", "analog", "bus", True),
    "mov": OpSpec("analog", "analog", "mov", True),
    "add": OpSpec("analog", "analog", "add", True),
    "sub": OpSpec("analog", "analog", "sub", True),
    "neg": OpSpec("analog", "analog", "neg", True),
    "abs": OpSpec("analog", "analog", "abs", True),
    "div2": OpSpec("analog", "analog", "div2", True),
    "movx": OpSpec("analog", "analog", "movx", True),
    "in": OpSpec("analog", "", "in", True),
    "input": OpSpec("analog", "", "input", True),
    "where": OpSpec("flag", "analog", "where"),
    "all": OpSpec("flag", "", "digital"),
    "dmov": OpSpec("digital", "digital", "digital"),
    "dnot": OpSpec("digital", "digital", "digital"),
    "dor": OpSpec("digital", "digital", "digital"),
    "dnor": OpSpec("digital", "digital", "digital"),
    "dand": OpSpec("digital", "digital", "and"),
    "dset": OpSpec("digital", "", "digital"),
    "dclr": OpSpec("digital", "", "digital"),
    "dshift": OpSpec("digital", "digital", "shift"),
    "pattern": OpSpec("digital", "", "digital"),
    "readout": OpSpec(None, "any", "free"),
}


@dataclasses.dataclass(frozen=True)
class Instruction:
    """One instruction: operation, destination register, source registers, immediate arguments."""

    op: str
    dst: Optional[str] = None
    srcs: Tuple[str, ...] = ()
    args: Tuple = ()

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"Unknown instruction {self.op!r}; the instruction set is {', '.join(OPS)}.")

    @property
    def spec(self):
        return OPS[self.op]

    def registers(self):
        return tuple(r for r in ((self.dst,) if self.dst else ()) + self.srcs)

    def words(self, config):
        """Instruction words on `config` (its on-chip time is words / clock)."""
        cost = self.spec.cost
        if cost == "free":
            return 0
        if cost == "digital":
            return 1
        if cost == "shift":
            return int(self.args[1])
        if cost == "and":
            return int(config.bus_ops.get("and", 1))
        return int(config.bus_ops[cost])

    def rename(self, sources, destination=None):
        """This instruction with registers renamed: `sources` maps source names, `destination`
        (default: the same mapping) the destination's."""
        destination = sources if destination is None else destination
        return dataclasses.replace(
            self,
            dst=destination.get(self.dst, self.dst) if self.dst else self.dst,
            srcs=tuple(sources.get(s, s) for s in self.srcs),
        )

    def __str__(self):
        operands = ([self.dst] if self.dst else []) + list(self.srcs) + [_fmt(a) for a in self.args]
        return f"{self.op}({', '.join(operands)})"


def _fmt(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _direction(direction):
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {direction!r}; use one of {', '.join(DIRECTIONS)}.")
    return direction


# Constructors: the names a program is written with.
def bus(dst, *srcs):
    if not srcs:
        raise ValueError("bus needs at least one source.")
    return Instruction("bus", dst, tuple(srcs))


def mov(dst, src):
    return Instruction("mov", dst, (src,))


def add(dst, a, b):
    return Instruction("add", dst, (a, b))


def sub(dst, a, b):
    return Instruction("sub", dst, (a, b))


def neg(dst, src):
    return Instruction("neg", dst, (src,))


def abs_(dst, src):
    return Instruction("abs", dst, (src,))


def div2(dst, src):
    return Instruction("div2", dst, (src,))


def movx(dst, src, direction):
    return Instruction("movx", dst, (src,), (_direction(direction),))


def in_(dst, value):
    return Instruction("in", dst, (), (float(value),))


def input_(dst, scale=1.0):
    return Instruction("input", dst, (), (float(scale),))


def where(src):
    return Instruction("where", "FLAG", (src,))


def all_():
    return Instruction("all", "FLAG")


def dmov(dst, src):
    return Instruction("dmov", dst, (src,))


def dnot(dst, src):
    return Instruction("dnot", dst, (src,))


def dor(dst, a, b):
    return Instruction("dor", dst, (a, b))


def dnor(dst, a, b):
    return Instruction("dnor", dst, (a, b))


def dand(dst, a, b):
    return Instruction("dand", dst, (a, b))


def dset(dst):
    return Instruction("dset", dst)


def dclr(dst):
    return Instruction("dclr", dst)


def dshift(dst, src, direction, steps=1):
    if int(steps) < 1:
        raise ValueError(f"dshift steps must be >= 1, got {steps}.")
    return Instruction("dshift", dst, (src,), (_direction(direction), int(steps)))


def pattern(dst, row, col, row_mask=0, col_mask=0):
    return Instruction("pattern", dst, (), (int(row), int(col), int(row_mask), int(col_mask)))


def readout(src, region, scale=1.0, offset=0.0, pool=1):
    region = tuple(int(v) for v in region)
    if len(region) != 4:
        raise ValueError(f"readout region is (row, col, height, width), got {region}.")
    return Instruction("readout", None, (src,), (region, float(scale), float(offset), int(pool)))
