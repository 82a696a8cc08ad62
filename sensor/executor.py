"""Executes programs on emulated register planes with TensorFlow, for many sensors at once.

Analog registers are float32 planes (B, H, W) over a batch of B independent sensors, in sensor
units. Digital registers (and FLAG) are bit-packed over the batch, (ceil(B / 32), H, W) int32
(sensor.kernels). The program is interpreted once in Python while a `tf.function` traces it, so
each section becomes one graph that runs on CPU or GPU:

- each analog macro (or a tap's add/subtract pair, whose FLAGs are provably disjoint) is one
  fused XLA kernel that reads its sources, applies drift, fixed-pattern and temporal noise,
  and writes where FLAG is set; a second, light kernel counts the saturated writes;
- digital instructions are folded into numpy constants when they do not depend on data
  (load_pattern masks, weights), and otherwise chained lazily into bitwise expressions that the
  next write evaluates inside its kernel (shifts, readouts and the section's end evaluate them
  in one fused kernel);
- an analog write is emulated only inside the bounding box of the pixels its FLAG can select,
  which the interpreter knows at trace time from the constant planes FLAG was built from (the
  recurrent step, gated to two elements, costs 2/16 of the array); outside the box nothing is
  written, as on the chip.

Noise (sensor.noise) is applied to the result of every analog macro with one draw per pixel
keyed by (seed, frame counter, step): runs are reproducible, and each sensor of a batch gets its
own draws. Analog planes keep a written value before saturation and every reader clips it (the
register holds the clipped value); saturation at the analog range is always on (it is the range,
not noise), and the executor counts the writes it clipped.
"""

import dataclasses
import math
import time

import numpy as np

from pixelrnn_tf._keras import tf
from sensor.instructions import DIRECTIONS, OPS
from sensor.kernels import FUSABLE, WriteKernels, constant_word, pack, unpack, words, write_key
from sensor.machine import Scamp5
from sensor.noise import resolve_noise


@dataclasses.dataclass
class EmulationResult:
    """readouts: (B, N, h, w, 1) in model units (sensor value * scale + offset of the readout
    instruction); saturated: analog writes clipped at the range (pixels x instructions);
    frames, seconds: emulated frames and wall time."""

    readouts: np.ndarray
    saturated: int
    frames: int
    seconds: float

    @property
    def frames_per_second(self):
        return self.frames / self.seconds if self.seconds else float("inf")


def _shifted(x, dy, dx, fill):
    """out[y, x] = x[y + dy, x + dx], `fill` beyond the edge, over the last two axes."""
    lib_np = isinstance(x, np.ndarray)
    h, w = x.shape[-2], x.shape[-1]
    pads = [(0, 0)] * (len(x.shape) - 2) + [(max(-dy, 0), max(dy, 0)), (max(-dx, 0), max(dx, 0))]
    if lib_np:
        padded = np.pad(x, pads, constant_values=fill)
    else:
        padded = tf.pad(x, pads, constant_values=tf.cast(fill, x.dtype))
    y0, x0 = max(dy, 0), max(dx, 0)
    return padded[..., y0 : y0 + h, x0 : x0 + w]


def _box_of(plane):
    """(y0, y1, x0, x1): the bounding box of the ones of a constant (H, W) bool plane; None if empty."""
    rows, cols = np.flatnonzero(plane.any(axis=1)), np.flatnonzero(plane.any(axis=0))
    if not len(rows):
        return None
    return (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def _crop(x, box):
    """x[..., y0:y1, x0:x1] for planes; scalars unchanged."""
    if box is None or not hasattr(x, "shape") or len(x.shape) < 2:
        return x
    y0, y1, x0, x1 = box
    return x[..., y0:y1, x0:x1]


def _paste(full, sub, box, shape):
    """full with its box replaced by sub (both (B, ...) tensors); box None: sub is the plane."""
    if box is None or box == (0, shape[0], 0, shape[1]):
        return sub
    y0, y1, x0, x1 = box
    parts = [p for p in (full[:, y0:y1, :x0] if x0 else None, sub, full[:, y0:y1, x1:] if x1 < shape[1] else None) if p is not None]
    middle = tf.concat(parts, axis=2) if len(parts) > 1 else sub
    parts = [p for p in (full[:, :y0] if y0 else None, middle, full[:, y1:] if y1 < shape[0] else None) if p is not None]
    return tf.concat(parts, axis=1) if len(parts) > 1 else middle


def _select(condition, x, y):
    """tf.where(condition, x, y); with the three shapes known and equal it uses the Select kernel,
    about 3x faster on CPU than SelectV2's broadcasting one (same values)."""
    condition = tf.convert_to_tensor(condition)
    shapes = [t.shape for t in (condition, x, y)]
    if all(s.is_fully_defined() for s in shapes) and shapes[0] == shapes[1] == shapes[2]:
        return tf.raw_ops.Select(condition=condition, x=x, y=y)
    return tf.where(condition, x, y)


def _is_const(x):
    return isinstance(x, (np.ndarray, np.bool_, bool, float, int))


def _pattern(height, width, row, col, row_mask, col_mask):
    rows = (np.arange(height) | row_mask) == (row | row_mask)
    cols = (np.arange(width) | col_mask) == (col | col_mask)
    return rows[:, None] & cols[None, :]


# digital instructions, FLAG's included: they read no analog plane (but `where`, kept out)
DIGITAL_OPS = frozenset(op for op, spec in OPS.items() if spec.dst in ("digital", "flag") and op != "where")


class _Lazy:
    """A digital plane not computed yet: a bitwise op ("and", "or", "not") over numpy constant
    planes, packed tensors and other _Lazy planes. A run of digital instructions becomes one
    expression, evaluated inside the analog write that takes it as FLAG (sensor.kernels) or in
    one fused kernel when a shift, a readout or the end of the section needs its value."""

    LIMIT = 24  # nodes; a longer chain is evaluated on the spot

    def __init__(self, op, *args):
        self.op, self.args = op, args
        self.size = 1 + sum(a.size if isinstance(a, _Lazy) else 1 for a in args)
        self.value = None  # the packed tensor, once evaluated over the whole array


class _Boxed:
    """An analog plane whose `box` was last written as `sub` and not yet pasted into `base`:
    a run of writes confined to a few elements works on the small plane, and the full plane is
    assembled once, when something reads outside the box."""

    def __init__(self, base, box, sub):
        self.base, self.box, self.sub = base, box, sub


class Emulator:
    """Runs a Program on a batch of emulated arrays.

    program: a sensor.program.Program (virtual registers are allocated here).
    config: the ArrayConfig (default Scamp5()).
    noise: None/'none' (exact), 'scamp5', 'array' (config.noise), a NoiseModel, a dict or a JSON path.
    seed: seeds the fixed-pattern offsets and every temporal draw.
    jit: compile each analog write into one fused XLA kernel (sensor.kernels). False runs the
        same kernels as plain TensorFlow ops: the same values, several times slower.
    fuse: run writes to one register under FLAGs proven disjoint (a tap's add, subtract and the
        calibrated "+0") as one kernel. Results are identical without noise; with noise the
        draws differ, not their law.
    """

    def __init__(self, program, config=None, noise=None, seed=0, jit=True, fuse=True):
        self.config = config or Scamp5()
        self.program = program.allocate(self.config)
        self.noise = resolve_noise(noise, self.config.noise)
        self.seed = int(seed)
        self.jit = bool(jit)
        self.fuse = bool(fuse)
        self.shape = (self.config.height, self.config.width)
        used = {r for s in self.program.sections for i in self.program.instructions(s) for r in i.registers()}
        self.analog = sorted(r for r in used if self.config.kind(r) == "analog")
        self.digital = sorted((r for r in used if self.config.kind(r) == "digital"), key=str)
        if self.config.flag not in self.digital:
            self.digital.append(self.config.flag)
        rng = np.random.default_rng([self.seed, 0xF9])
        self.fixed_pattern = (rng.standard_normal(self.shape) * self.noise.fixed_pattern_stddev).astype(np.float32)
        noise = self.noise
        self.kernels = WriteKernels(
            self.config.analog_min,
            self.config.analog_max,
            (
                noise.drift_gain > 0,
                noise.drift_offset != 0 or noise.drift_gain > 0,
                noise.fixed_pattern_stddev > 0,
                noise.random,
                math.isfinite(noise.decay_time_s),
            ),
            jit=self.jit,
        )
        self._functions = {}

    # ---------------------------------------------------------------- interpretation
    def _initial_state(self, batch):
        """Registers at power-up: analog planes (B, H, W) at 0, digital planes packed (see
        sensor.kernels) at 0, FLAG set."""
        state = {r: tf.zeros((batch,) + self.shape, tf.float32) for r in self.analog}
        state.update({r: tf.zeros((words(batch),) + self.shape, tf.int32) for r in self.digital})
        state[self.config.flag] = tf.fill((words(batch),) + self.shape, -1)
        return state

    def unpack_state(self, state, batch):
        """Registers as (B, H, W) planes: digital ones unpacked to bool, analog ones as they are."""
        return {r: _bits(v, batch) if self.config.kind(r) == "digital" else v for r, v in state.items()}

    def _noise_scalars(self, bus_ops):
        """[gain, offset, fixed-pattern scale, sigma_0, sigma_1] of a macro of `bus_ops` operations."""
        noise = self.noise
        gain, offset = noise.drift_terms(bus_ops)
        fixed, temporal = noise.accumulated(bus_ops)
        return [gain, offset, fixed, temporal * noise.temporal_stddev, temporal * noise.signal_stddev]

    def _news_read(self):
        news = self.config.news
        return any(news in i.srcs for s in self.program.sections for i in self.program.instructions(s))

    def execute(self, section, state, frame=None, counter=0, on_stage=None, track_news=True, batch=None):
        """Run one section on `state` ({register: plane}); returns (state, readouts, saturated).
        Analog planes are (B, H, W) float32; digital planes are packed (P, H, W) int32 (see
        sensor.kernels; (B, H, W) bool planes are accepted and packed), and are returned packed
        (unpack_state unpacks them). Works eagerly and inside tf.function. on_stage(stage,
        planes) is called after each stage with unpacked planes. batch: the number of sensors,
        needed only when no analog plane or frame tells it.

        Analog writes are computed only inside the bounding box of where FLAG can be set, known
        at trace time from the constant planes that FLAG was combined with (a stage that uses a
        few elements costs a few elements); pixels outside are left as they are, as on the chip.
        track_news=False leaves the NEWS scratch plane out when no instruction reads it (run()
        does that: NEWS then never reaches a readout)."""
        config, noise = self.config, self.noise
        state = dict(state)
        if batch is None:
            known = [v for r, v in state.items() if config.kind(r) == "analog" or v.dtype == tf.bool]
            known += [frame] if frame is not None else []
            if not known:
                raise ValueError("execute() cannot tell the batch size from this state; pass batch=.")
            batch = tf.shape(known[0])[0]
        for register, value in list(state.items()):
            if config.kind(register) == "digital" and not _is_const(value) and value.dtype == tf.bool:
                state[register] = pack(value)
        saturated = []
        readouts = []
        written_at, clock = {}, 0  # trace-time timeline for decay, in instruction words
        counter = tf.cast(counter, tf.int64)
        steps = self.program.sections.get(section, ())
        constants = {}
        full_box = (0, self.shape[0], 0, self.shape[1])
        boxes = {}  # digital register -> bounding box of where it may be 1 (None: nowhere)
        # What a digital register's ones imply, as literals (token, polarity): a register that
        # is 1 only where `a` is 1 and one that is 1 only where `a` is 0 never overlap. Tokens
        # name the data-dependent values, so tap add/subtract pairs can be proven disjoint.
        tokens, literals = {}, {}
        next_token = [0]
        track_news = track_news and config.news in state

        def box_of(register):
            value = state[register]
            if isinstance(value, np.ndarray):
                return _box_of(value) if value.shape == self.shape else full_box
            if _is_const(value):
                return full_box if value else None
            return boxes.get(register, full_box)

        def union(a, b):
            if a is None or b is None:
                return a or b
            return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))

        def intersection(a, b):
            if a is None or b is None:
                return None
            box = (max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]))
            return box if box[0] < box[1] and box[2] < box[3] else None

        def shifted_box(box, dy, dx):
            if box is None:
                return None
            return intersection((box[0] - dy, box[1] - dy, box[2] - dx, box[3] - dx), full_box)

        def T(x):
            """A TF tensor for x; bool numpy planes go through uint8 (TF serialises bool arrays
            element by element, which made tracing a program take seconds) and are shared."""
            if isinstance(x, np.ndarray) and x.dtype == bool:
                key = (x.shape, x.tobytes())
                if key not in constants:
                    constants[key] = tf.constant(constant_word(x))
                return constants[key]
            if isinstance(x, np.ndarray):
                key = (x.shape, x.dtype.str, x.tobytes())
                if key not in constants:
                    constants[key] = tf.constant(x)
                return constants[key]
            return x

        def physical(unpacked=False):
            """The registers as the chip holds them: analog planes pasted together and clipped;
            digital planes packed, or unpacked to (B, H, W) bool."""
            planes = {}
            for register in state:
                value = materialize(register)
                if config.kind(register) == "analog":
                    planes[register] = self.kernels.clip(value)
                elif unpacked:
                    planes[register] = _bits(T(value), batch)
                else:
                    planes[register] = value
            return planes

        def expression(value, box):
            """(structure, leaves) of a digital value over box, for sensor.kernels.evaluate_bits."""
            leaves, index = [], {}

            def walk(node):
                if isinstance(node, _Lazy) and node.value is None:
                    return (node.op,) + tuple(walk(a) for a in node.args)
                leaf = node.value if isinstance(node, _Lazy) else node
                if id(leaf) not in index:
                    index[id(leaf)] = len(leaves)
                    leaves.append(T(_crop(leaf, box)))
                return ("leaf", index[id(leaf)])

            return walk(value), leaves

        def evaluate(value):
            """A digital value as a constant or a packed tensor over the whole array."""
            if not isinstance(value, _Lazy):
                return value
            if value.value is None:
                value.value = self.kernels.bits(*expression(value, None))
            return value.value

        def lazy(op, *args):
            """A bitwise op on digital values: folded when constant, simplified against all-zero or
            all-one constants, deferred otherwise."""
            if all(_is_const(a) for a in args):
                return {"and": lambda a, b: a & b, "or": lambda a, b: a | b, "not": lambda a: ~a}[op](*args)
            if op == "not":
                return args[0].args[0] if isinstance(args[0], _Lazy) and args[0].op == "not" else _Lazy("not", args[0])
            a, b = args
            for x, y in ((a, b), (b, a)):
                if _is_const(x) and isinstance(x, np.ndarray):
                    if not x.any():
                        return x if op == "and" else y
                    if x.all():
                        return y if op == "and" else x
            node = _Lazy(op, a, b)
            if node.size > _Lazy.LIMIT:
                node = _Lazy(op, evaluate(a), evaluate(b))
            return node

        def materialize(register):
            value = state[register]
            if isinstance(value, _Lazy):
                value = state[register] = evaluate(value)
            if isinstance(value, _Boxed):
                value = state[register] = _paste(value.base, value.sub, value.box, self.shape)
            return value

        def view(register, box):
            """The plane of an analog register over box (None: the whole array)."""
            value = state[register]
            if isinstance(value, _Boxed) and box is not None:
                y0, y1, x0, x1 = value.box
                if y0 <= box[0] and box[1] <= y1 and x0 <= box[2] and box[3] <= x1:
                    return value.sub[:, box[0] - y0 : box[1] - y0, box[2] - x0 : box[3] - x0]
            return _crop(materialize(register), box)

        def put(register, sub, box):
            if box is None or box == full_box:
                state[register] = sub
            else:
                value = state[register]
                base = value.base if isinstance(value, _Boxed) and value.box == box else materialize(register)
                state[register] = _Boxed(base, box, sub)

        def decay_factor(register, at=None):
            """How much of its value `register` keeps when read at clock `at` (default: now)."""
            if not np.isfinite(noise.decay_time_s):
                return 1.0
            return noise.decay(config.seconds((clock if at is None else at) - written_at.get(register, 0)))

        def read(register, box=None, at=None):
            value = view(register, box)
            if config.kind(register) == "analog":
                value = self.kernels.clip(value)  # analog planes keep values before saturation
            factor = decay_factor(register, at)
            return value * factor if factor != 1.0 else value

        def set_digital(register, value, lits=None):
            """Assign a digital register; lits: what its ones imply besides its own token."""
            state[register] = value
            if _is_const(value):
                tokens[register], literals[register] = None, frozenset()
            else:
                next_token[0] += 1
                tokens[register] = next_token[0]
                literals[register] = frozenset(lits or ()) | {(next_token[0], True)}

        def negated(register):
            token = tokens.get(register)
            return () if token is None else ((token, False),)

        def write_spec(ins, box, at):
            """(kernel op, sources, scalars) of one analog macro over box, executed at clock `at`."""
            op, srcs, args = ins.op, ins.srcs, ins.args
            constant, sources, factors = 0.0, [], []
            if op == "movx":
                dy, dx = DIRECTIONS[args[0]]
                sources = [_shifted(read(srcs[0], at=at), dy, dx, config.edge_value)]
                op = "mov"
            elif op == "input":
                sources, constant, op = [_crop(self._fit_frame(frame), box)], args[0], "scale"
            elif op == "in":
                constant = args[0]
            else:
                sources = [view(s, box) for s in srcs]
                factors = [decay_factor(s, at) for s in srcs]
            factors += [1.0] * (len(sources) - len(factors))
            scalars = [constant] + self._noise_scalars(ins.words(config)) + factors
            return op, sources, scalars

        def run_writes(group, step):
            """Run one analog write, or several under disjoint FLAGs, as one kernel.
            group: ((instruction, flag register value, flag box, clock at the instruction), ...)."""
            box = None
            for _, _, flag_box, _ in group:
                box = union(box, flag_box)
            if box is None:  # FLAG is off everywhere: nothing is written
                return None
            area = (box[1] - box[0]) * (box[3] - box[2])
            if any(ins.op == "movx" for ins, *_ in group) or 2 * area > self.shape[0] * self.shape[1]:
                box = None  # a neighbour read needs the planes beyond the box; a crop of most of
                # the array costs more in copies than it saves
            dst = group[0][0].dst
            writes, sources, leaves, scalars = [], [], [], []
            for ins, flag, _, at in group:
                op, xs, s = write_spec(ins, box, at)
                gate = None
                if not _all_true(flag):
                    gate, own_leaves = expression(flag, box)
                    gate = _offset_leaves(gate, len(leaves))
                    leaves += own_leaves
                writes.append((op, len(xs), gate))
                sources.append(tuple(xs))
                scalars.append(s)
            # writes of one macro cost (add and sub: 2 bus operations) drift and draw alike:
            # the kernel then selects each pixel's value first and applies the noise once
            shared = len(group) > 1 and all(x[1:6] == scalars[0][1:6] for x in scalars)
            scalars = [tf.constant(x, tf.float32) for x in scalars]
            fixed = T(_crop(self.fixed_pattern, box)) if noise.fixed_pattern_stddev else None
            key = write_key(self.seed, counter, step)
            old = view(dst, box)
            if old.shape.rank == 2:  # an analog plane given without a batch axis
                old = tf.broadcast_to(old, (batch,) + old.shape)
            new, clipped = self.kernels(tuple(writes), old, sources, leaves, scalars, fixed, key, shared)
            saturated.append(clipped)
            put(dst, new, box)
            return new, sources, box

        def update_news(ins, new, sources, box):
            """mov, add and sub leave -(their first bus result) in NEWS: -(dst as written) for mov
            and add, -a for sub."""
            flag = _crop(evaluate(state[config.flag]), box)
            news = -self.kernels.clip(new if ins.op != "sub" else sources[0])
            if not _all_true(flag):
                news = _select(_bits(T(flag), batch), news, view(config.news, box))
            put(config.news, news, box)

        def run_digital(ins):
            """One digital instruction (FLAG included): folded, deferred or computed."""
            op, dst, srcs, args = ins.op, ins.dst, ins.srcs, ins.args
            if op == "where":
                # clipping and decay (a positive factor) do not change the sign: compare the raw plane
                set_digital(config.flag, self.kernels.sign_bits(view(srcs[0], None)))
                boxes[config.flag] = full_box
            elif op == "all":
                set_digital(config.flag, np.ones(self.shape, bool))
            elif op == "dmov":
                boxes[dst] = box_of(srcs[0])
                state[dst] = state[srcs[0]]
                tokens[dst], literals[dst] = tokens.get(srcs[0]), literals.get(srcs[0], frozenset())
            elif op == "dnot":
                set_digital(dst, lazy("not", state[srcs[0]]), negated(srcs[0]))
                boxes[dst] = full_box
            elif op in ("dor", "dnor", "dand"):
                a, b = state[srcs[0]], state[srcs[1]]
                box_a, box_b = box_of(srcs[0]), box_of(srcs[1])
                if op == "dand":
                    lits = literals.get(srcs[0], frozenset()) | literals.get(srcs[1], frozenset())
                    set_digital(dst, lazy("and", a, b), lits)
                    boxes[dst] = intersection(box_a, box_b)
                else:
                    either = lazy("or", a, b)
                    if op == "dor":
                        set_digital(dst, either)
                    else:
                        set_digital(dst, lazy("not", either), negated(srcs[0]) + negated(srcs[1]))
                    boxes[dst] = union(box_a, box_b) if op == "dor" else full_box
            elif op == "dset":
                set_digital(dst, np.ones(self.shape, bool))
            elif op == "dclr":
                set_digital(dst, np.zeros(self.shape, bool))
            elif op == "dshift":
                dy, dx = DIRECTIONS[args[0]]
                boxes[dst] = shifted_box(box_of(srcs[0]), dy * args[1], dx * args[1])
                set_digital(dst, _shifted(evaluate(state[srcs[0]]), dy * args[1], dx * args[1], False))
            elif op == "pattern":
                set_digital(dst, _pattern(*self.shape, *args))
            else:  # pragma: no cover - OPS and this interpreter are kept in step by the tests
                raise NotImplementedError(op)

        def gate_disjoint(a, b):
            """Whether two FLAG values, given as (value, literals), are provably never 1 together."""
            (va, la), (vb, lb) = a, b
            if _is_const(va) and _is_const(vb):
                return not np.any(np.logical_and(va, vb))
            return any((token, not polarity) in lb for token, polarity in la)

        def extend(group, index, stage, dst):
            """Grow a group of writes to dst with the writes that follow under FLAGs disjoint from
            all of the group's: [digital instructions that leave FLAG alone], dmov(FLAG, r),
            write(dst, ...). The digital instructions run now (they read no analog plane and
            the pending writes read no digital one but FLAG). Returns the next index."""
            nonlocal clock
            gates = [(state[config.flag], literals.get(config.flag, frozenset()))]
            while True:
                k = index
                while (
                    k < len(steps)
                    and steps[k][0] == stage
                    and steps[k][1].op in DIGITAL_OPS
                    and steps[k][1].dst != config.flag
                ):
                    k += 1
                if not (
                    k + 1 < len(steps)
                    and all(s == stage for s, _ in steps[k : k + 2])
                    and steps[k][1].op == "dmov"
                    and steps[k][1].dst == config.flag
                    and steps[k + 1][1].op in FUSABLE
                    and steps[k + 1][1].dst == dst
                ):
                    return index
                for _, ins in steps[index:k]:
                    clock += ins.words(config)
                    run_digital(ins)
                index = k
                gate = steps[k][1].srcs[0]
                candidate = (state[gate], literals.get(gate, frozenset()))
                if not all(gate_disjoint(candidate, g) for g in gates):
                    return index
                clock += steps[k][1].words(config) + steps[k + 1][1].words(config)
                group.append((steps[k + 1][1], state[gate], box_of(gate), clock))
                gates.append(candidate)
                run_digital(steps[k][1])  # the dmov(FLAG, gate) between the writes
                index = k + 2

        previous_stage = None
        analog_ops = ("bus", "mov", "add", "sub", "neg", "abs", "div2", "movx", "in", "input")
        index = 0
        while index < len(steps):
            stage, ins = steps[index]
            step = index
            index += 1
            if on_stage is not None and previous_stage is not None and stage != previous_stage:
                on_stage(previous_stage, physical(unpacked=True))
            previous_stage = stage
            op, dst, srcs, args = ins.op, ins.dst, ins.srcs, ins.args
            clock += ins.words(config)
            if op in analog_ops:
                if op == "input" and frame is None:
                    raise ValueError(f"{section} step {step}: {ins} reads the image, but this section has no frame.")
                group = [(ins, state[config.flag], box_of(config.flag), clock)]
                if self.fuse and not track_news and op in FUSABLE:
                    index = extend(group, index, stage, dst)
                result = run_writes(group, step)
                written_at[dst] = clock
                if result is not None and op in ("mov", "add", "sub") and dst != config.news and track_news:
                    update_news(ins, result[0], result[1][0], result[2])
            elif op == "readout":
                (row, col, height, width), scale, offset, pool = args
                source = materialize(srcs[0])
                if config.kind(srcs[0]) == "analog":
                    value = tf.broadcast_to(self.kernels.clip(source), (batch,) + self.shape)
                else:
                    value = _bits(T(source), batch)
                value = tf.cast(value, tf.float32)
                value = value[:, row : row + height, col : col + width] * scale + offset
                if pool > 1:
                    value = tf.nn.max_pool2d(value[..., None], pool, pool, "VALID")[..., 0]
                readouts.append(value)
            else:
                run_digital(ins)
        if on_stage is not None and previous_stage is not None:
            on_stage(previous_stage, physical(unpacked=True))
        state = physical()
        state = {
            r: tf.broadcast_to(T(v), ((batch,) if config.kind(r) == "analog" else (words(batch),)) + self.shape)
            for r, v in state.items()
        }
        total = tf.add_n([tf.cast(s, tf.int64) for s in saturated]) if saturated else tf.constant(0, tf.int64)
        return state, readouts, total

    def _fit_frame(self, frame):
        """A (B, h, w) frame onto the (B, H, W) array: the paper's pipeline gives every h x w
        processing element (block of PEs) its own copy of the binarised frame, so a smaller frame
        is replicated over the array."""
        frame = tf.convert_to_tensor(frame, tf.float32)
        h, w = frame.shape[-2], frame.shape[-1]
        if self.shape[0] % h or self.shape[1] % w:
            raise ValueError(f"A {h}x{w} frame does not tile the {self.shape[0]}x{self.shape[1]} array.")
        return tf.tile(frame, [1, self.shape[0] // h, self.shape[1] // w])

    # ---------------------------------------------------------------- running
    def _function(self, section):
        if section not in self._functions:

            track_news = self._news_read()

            def run(state, frame, counter):
                state, readouts, saturated = self.execute(section, state, frame, counter, track_news=track_news)
                return state, readouts, saturated

            self._functions[section] = tf.function(run, autograph=False, reduce_retracing=True)
        return self._functions[section]

    def run(self, clips, progress=None):
        """Emulate clips (B, T, h, w, 1) or (B, T, h, w) in model units; T must be a multiple of
        the program's window K. Returns an EmulationResult."""
        clips = np.asarray(clips, np.float32)
        if clips.ndim == 5:
            clips = clips[..., 0]
        batch, frames = clips.shape[:2]
        window = self.program.window
        if frames % window:
            raise ValueError(f"Clips have T={frames} frames, not a multiple of the program's window K={window}.")
        start = time.perf_counter()
        state = self._initial_state(batch)
        outputs, saturated = [], 0
        for w0 in range(0, frames, window):
            state, _, sat = self._function("reset")(state, clips[:, w0], tf.constant(w0, tf.int64))
            saturated += int(sat)
            for t in range(w0, w0 + window):
                state, _, sat = self._function("frame")(state, clips[:, t], tf.constant(t, tf.int64))
                saturated += int(sat)
                if progress is not None:
                    progress(batch)
            state, readouts, sat = self._function("readout")(state, clips[:, w0], tf.constant(w0, tf.int64))
            saturated += int(sat)
            outputs.append(np.stack([r.numpy() for r in readouts], axis=-1))
        readouts = np.stack(outputs, axis=1)  # (B, N, h, w, readouts per window)
        return EmulationResult(readouts, saturated, batch * frames, time.perf_counter() - start)

    def snapshots(self, clip, directory):
        """Run the first window of one clip (T, h, w[, 1]) eagerly and write every register plane
        of sensor 0 at the end of each stage of the first frame as PNG images under `directory`.
        Returns the written paths."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from pathlib import Path

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        clip = np.asarray(clip, np.float32).reshape((1, -1) + np.asarray(clip).shape[1:3])
        paths = []

        def save(prefix):
            def on_stage(stage, state):
                for register, plane in state.items():
                    plane = np.broadcast_to(np.asarray(plane), (1,) + self.shape)[0].astype(np.float32)
                    path = directory / f"{prefix}_{len(paths):03d}_{stage}_{register}.png"
                    kind = self.config.kind(register)
                    vmin, vmax = (self.config.analog_min, self.config.analog_max) if kind == "analog" else (0, 1)
                    plt.imsave(path, plane, cmap="gray", vmin=vmin, vmax=vmax)
                    paths.append(path)

            return on_stage

        state = self._initial_state(1)
        state, _, _ = self.execute("reset", state, clip[:, 0], 0, on_stage=save("reset"))
        self.execute("frame", state, clip[:, 0], 0, on_stage=save("frame0"))
        return paths


def _bits(packed, batch):
    """A packed digital plane, or a (1, h, w) constant word, as (batch, h, w) bool."""
    packed = tf.convert_to_tensor(packed)
    return unpack(tf.broadcast_to(packed, tf.concat([[words(batch)], tf.shape(packed)[1:]], 0)), batch)


def _offset_leaves(expression, offset):
    """An expression with its leaf indices moved by offset (leaves of several gates in one list)."""
    if expression[0] == "leaf":
        return ("leaf", expression[1] + offset)
    return (expression[0],) + tuple(_offset_leaves(e, offset) for e in expression[1:])


def _all_true(flag):
    return isinstance(flag, np.ndarray) and flag.all()
