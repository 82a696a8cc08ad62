"""Digital registers at trace time: folded constants, lazy bitwise expressions, and what is known
of where each plane can be 1.

A digital value is a numpy (H, W) bool plane when it does not depend on data (load_pattern masks,
weights: it is folded at trace time), a packed tensor (sensor.kernels), or a `Lazy` bitwise
expression over both, which the next analog write evaluates inside its kernel. Besides its
value, `DigitalPlanes` keeps for every register

- the bounding box of the pixels where it may be 1 (sensor.planes), from the constant planes it
  was combined with: a write gated by it is emulated inside that box only;
- its literals: a register that is 1 only where `a` is 1 and one that is 1 only where `a` is 0
  never overlap. Every data-dependent value gets a token, and a register's literals are the
  (token, polarity) pairs that its ones imply, so that the FLAGs of a tap's add and subtract can
  be proven disjoint (`disjoint`) and their writes fused (sensor.fusion).
"""

import numpy as np

from sensor.instructions import DIRECTIONS, OPS
from sensor.planes import box_of, crop, intersection, is_constant, shifted, shifted_box, union

# digital instructions, FLAG's included: they read no analog plane (but `where`, kept out)
DIGITAL_OPS = frozenset(op for op, spec in OPS.items() if spec.dst in ("digital", "flag") and op != "where")


class Lazy:
    """A digital plane not computed yet: a bitwise op ("and", "or", "not") over numpy constant
    planes, packed tensors and other Lazy planes. A run of digital instructions becomes one
    expression, evaluated inside the analog write that takes it as FLAG (sensor.kernels) or in
    one fused kernel when a shift, a readout or the end of the section needs its value."""

    LIMIT = 24  # nodes; a longer chain is evaluated on the spot

    def __init__(self, op, *args):
        self.op, self.args = op, args
        self.size = 1 + sum(a.size if isinstance(a, Lazy) else 1 for a in args)
        self.value = None  # the packed tensor, once evaluated over the whole array


def fold(op, args):
    """A bitwise op on digital values done at trace time, where constants decide it: the constant
    result, or the operand it reduces to against an all-zero or all-one constant; None if it
    needs the data."""
    if all(is_constant(a) for a in args):
        return {"and": lambda a, b: a & b, "or": lambda a, b: a | b, "not": lambda a: ~a}[op](*args)
    if op == "not":
        return args[0].args[0] if isinstance(args[0], Lazy) and args[0].op == "not" else None
    a, b = args
    for x, y in ((a, b), (b, a)):
        if is_constant(x) and isinstance(x, np.ndarray):
            if not x.any():
                return x if op == "and" else y
            if x.all():
                return y if op == "and" else x
    return None


def disjoint(a, b):
    """Whether two FLAG values, given as (value, literals), are provably never 1 together."""
    (va, la), (vb, lb) = a, b
    if is_constant(va) and is_constant(vb):
        return not np.any(np.logical_and(va, vb))
    return any((token, not polarity) in lb for token, polarity in la)


def pattern(height, width, row, col, row_mask, col_mask):
    """SCAMP-5's load_pattern as a constant plane (sensor.instructions.pattern)."""
    rows = (np.arange(height) | row_mask) == (row | row_mask)
    cols = (np.arange(width) | col_mask) == (col | col_mask)
    return rows[:, None] & cols[None, :]


def offset_leaves(expression, offset):
    """An expression with its leaf indices moved by offset (leaves of several gates in one list)."""
    if expression[0] == "leaf":
        return ("leaf", expression[1] + offset)
    return (expression[0],) + tuple(offset_leaves(e, offset) for e in expression[1:])


class DigitalPlanes:
    """The digital registers of one execution: their values in `state` (shared with the analog
    registers, so that the registers keep one order), boxes, tokens and literals, and one handler
    per digital instruction. kernels and constants (sensor.kernels.WriteKernels,
    sensor.planes.Constants) evaluate lazy expressions into tensors."""

    def __init__(self, state, shape, flag, kernels=None, constants=None):
        self.state, self.shape, self.flag = state, shape, flag
        self.kernels, self.constants = kernels, constants
        self.full_box = (0, shape[0], 0, shape[1])
        self.boxes = {}  # register -> bounding box of where it may be 1 (None: nowhere)
        self.tokens, self.literals = {}, {}
        self.next_token = 0

    # ------------------------------------------------------------ what is known of a register
    def box_of(self, register):
        """The bounding box of where the register may be 1 (None: nowhere)."""
        value = self.state[register]
        if isinstance(value, np.ndarray):
            return box_of(value) if value.shape == self.shape else self.full_box
        if is_constant(value):
            return self.full_box if value else None
        return self.boxes.get(register, self.full_box)

    def gate(self, register):
        """(value, literals) of a register, as `disjoint` compares FLAGs."""
        return self.state[register], self.literals.get(register, frozenset())

    def assign(self, register, value, literals=None):
        """Give a register a new value; literals: what its ones imply besides its own token."""
        self.state[register] = value
        if is_constant(value):
            self.tokens[register], self.literals[register] = None, frozenset()
        else:
            self.next_token += 1
            self.tokens[register] = self.next_token
            self.literals[register] = frozenset(literals or ()) | {(self.next_token, True)}

    def negated(self, register):
        """The literals of the register's complement: its token, negated (none for a constant)."""
        token = self.tokens.get(register)
        return () if token is None else ((token, False),)

    # ------------------------------------------------------------ values
    def combine(self, op, *args):
        """A bitwise op on digital values: folded when constants decide it, deferred otherwise."""
        folded = fold(op, args)
        if folded is not None:
            return folded
        node = Lazy(op, *args)
        if op != "not" and node.size > Lazy.LIMIT:
            node = Lazy(op, *(self.evaluate(a) for a in args))
        return node

    def evaluate(self, value):
        """A digital value as a constant or a packed tensor over the whole array."""
        if not isinstance(value, Lazy):
            return value
        if value.value is None:
            value.value = self.kernels.bits(*self.expression(value, None))
        return value.value

    def materialize(self, register):
        """The register's value, evaluated (and kept) if it was a lazy expression."""
        value = self.state[register]
        if isinstance(value, Lazy):
            value = self.state[register] = self.evaluate(value)
        return value

    def expression(self, value, box):
        """(structure, leaves) of a digital value over box, for sensor.kernels.evaluate_bits."""
        leaves, index = [], {}

        def walk(node):
            if isinstance(node, Lazy) and node.value is None:
                return (node.op,) + tuple(walk(a) for a in node.args)
            leaf = node.value if isinstance(node, Lazy) else node
            if id(leaf) not in index:
                index[id(leaf)] = len(leaves)
                leaves.append(self.constants(crop(leaf, box)))
            return ("leaf", index[id(leaf)])

        return walk(value), leaves

    def shift(self, value, dy, dx):
        return shifted(self.evaluate(value), dy, dx, False)

    # ------------------------------------------------------------ instructions
    def run(self, instruction):
        """One digital instruction (FLAG's included; `where` is `compare`)."""
        handler = _HANDLERS.get(instruction.op)
        if handler is None:  # pragma: no cover - OPS and this interpreter are kept in step by the tests
            raise NotImplementedError(instruction.op)
        handler(self, instruction.dst, instruction.srcs, instruction.args)

    def compare(self, bits):
        """FLAG := the comparator's result, packed bits that may be 1 anywhere."""
        self.assign(self.flag, bits)
        self.boxes[self.flag] = self.full_box

    def _all(self, dst, srcs, args):
        self.assign(self.flag, np.ones(self.shape, bool))

    def _dmov(self, dst, srcs, args):
        self.boxes[dst] = self.box_of(srcs[0])
        self.state[dst] = self.state[srcs[0]]
        self.tokens[dst], self.literals[dst] = self.tokens.get(srcs[0]), self.literals.get(srcs[0], frozenset())

    def _dnot(self, dst, srcs, args):
        self.assign(dst, self.combine("not", self.state[srcs[0]]), self.negated(srcs[0]))
        self.boxes[dst] = self.full_box

    def _dand(self, dst, srcs, args):
        boxes = self.box_of(srcs[0]), self.box_of(srcs[1])
        literals = self.literals.get(srcs[0], frozenset()) | self.literals.get(srcs[1], frozenset())
        self.assign(dst, self.combine("and", self.state[srcs[0]], self.state[srcs[1]]), literals)
        self.boxes[dst] = intersection(*boxes)

    def _dor(self, dst, srcs, args):
        boxes = self.box_of(srcs[0]), self.box_of(srcs[1])
        self.assign(dst, self.combine("or", self.state[srcs[0]], self.state[srcs[1]]))
        self.boxes[dst] = union(*boxes)

    def _dnor(self, dst, srcs, args):
        either = self.combine("or", self.state[srcs[0]], self.state[srcs[1]])
        self.assign(dst, self.combine("not", either), self.negated(srcs[0]) + self.negated(srcs[1]))
        self.boxes[dst] = self.full_box

    def _dset(self, dst, srcs, args):
        self.assign(dst, np.ones(self.shape, bool))

    def _dclr(self, dst, srcs, args):
        self.assign(dst, np.zeros(self.shape, bool))

    def _dshift(self, dst, srcs, args):
        dy, dx = DIRECTIONS[args[0]]
        self.boxes[dst] = shifted_box(self.box_of(srcs[0]), dy * args[1], dx * args[1], self.shape)
        self.assign(dst, self.shift(self.state[srcs[0]], dy * args[1], dx * args[1]))

    def _pattern(self, dst, srcs, args):
        self.assign(dst, pattern(*self.shape, *args))


_HANDLERS = {
    "all": DigitalPlanes._all,
    "dmov": DigitalPlanes._dmov,
    "dnot": DigitalPlanes._dnot,
    "dand": DigitalPlanes._dand,
    "dor": DigitalPlanes._dor,
    "dnor": DigitalPlanes._dnor,
    "dset": DigitalPlanes._dset,
    "dclr": DigitalPlanes._dclr,
    "dshift": DigitalPlanes._dshift,
    "pattern": DigitalPlanes._pattern,
}


class Unknown:
    """A data-dependent digital plane in a `ShadowPlanes`: its value is not computed, only known
    not to be constant."""


class ShadowPlanes(DigitalPlanes):
    """DigitalPlanes without tensors: constants are folded, boxes and literals tracked as in the
    execution, and every data-dependent plane is an Unknown. sensor.fusion runs a section's
    digital instructions on it ahead of the execution, to plan which writes fuse."""

    def __init__(self, state, shape, flag):
        super().__init__({r: v if is_constant(v) else Unknown() for r, v in state.items()}, shape, flag)

    def evaluate(self, value):
        return Unknown() if isinstance(value, Lazy) else value

    def shift(self, value, dy, dx):
        value = self.evaluate(value)
        return shifted(value, dy, dx, False) if is_constant(value) else Unknown()
