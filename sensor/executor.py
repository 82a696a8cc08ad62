"""Executes programs on emulated register planes with TensorFlow, for many sensors at once.

Every register is a plane (B, H, W) over a batch of B independent sensors: analog registers are
float32 in sensor units, digital registers (and FLAG) are bool. The program is interpreted once
in Python while a `tf.function` traces it, so each instruction becomes a few TensorFlow ops and
the whole section compiles (with XLA when `jit=True`) into one graph that runs on CPU or GPU.
Digital planes that do not depend on data (load_pattern masks, weights, constants) are folded
into numpy constants during tracing, so they cost nothing at run time.

Noise (sensor.noise) is applied to the result of every analog macro with one stateless random
draw keyed by (seed, frame counter, step): runs are reproducible and independent of batching
order. An analog write is emulated only inside the bounding box of the pixels its FLAG can
select, which the interpreter knows at trace time from the constant planes FLAG was built from
(the recurrent step, gated to two elements, costs 2/16 of the array); outside the box nothing is
written, as on the chip. Saturation at the analog range is always on (it is the range, not noise); the executor
counts the writes it clipped.
"""

import dataclasses
import time

import numpy as np

from pixelrnn_tf._keras import tf
from sensor.instructions import DIRECTIONS
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


class Emulator:
    """Runs a Program on a batch of emulated arrays.

    program: a sensor.program.Program (virtual registers are allocated here).
    config: the ArrayConfig (default Scamp5()).
    noise: None/'none' (exact), 'scamp5', 'array' (config.noise), a NoiseModel, a dict or a JSON path.
    seed: seeds the fixed-pattern offsets and every temporal draw.
    jit: compile sections with XLA (off by default: on 2 CPU cores XLA compiled a 1-layer
        PixelRNN program for about a minute and then ran it slower than the graph executor).
    """

    def __init__(self, program, config=None, noise=None, seed=0, jit=False):
        self.config = config or Scamp5()
        self.program = program.allocate(self.config)
        self.noise = resolve_noise(noise, self.config.noise)
        self.seed = int(seed)
        self.jit = bool(jit)
        self.shape = (self.config.height, self.config.width)
        used = {r for s in self.program.sections for i in self.program.instructions(s) for r in i.registers()}
        self.analog = sorted(r for r in used if self.config.kind(r) == "analog")
        self.digital = sorted((r for r in used if self.config.kind(r) == "digital"), key=str)
        if self.config.flag not in self.digital:
            self.digital.append(self.config.flag)
        rng = np.random.default_rng([self.seed, 0xF9])
        self.fixed_pattern = (rng.standard_normal(self.shape) * self.noise.fixed_pattern_stddev).astype(np.float32)
        self._functions = {}

    # ---------------------------------------------------------------- interpretation
    def _initial_state(self, batch):
        state = {r: tf.zeros((batch,) + self.shape, tf.float32) for r in self.analog}
        state.update({r: tf.zeros((batch,) + self.shape, tf.bool) for r in self.digital})
        state[self.config.flag] = tf.ones((batch,) + self.shape, tf.bool)
        return state

    def _noisy(self, value, bus_ops, batch, key, box=None):
        """The noise model on a macro's result over the planes' `box` (None: the whole array)."""
        noise = self.noise
        gain, offset = noise.drift_terms(bus_ops)
        if gain != 1.0:
            value = value * gain
        fixed, temporal = noise.accumulated(bus_ops)
        # the drift offset and the fixed-pattern offsets are one constant plane: one add
        constant = offset + fixed * _crop(self.fixed_pattern, box) if noise.fixed_pattern_stddev else offset
        if not isinstance(constant, float) or constant != 0.0:
            value = value + constant.astype(np.float32) if isinstance(constant, np.ndarray) else value + constant
        if noise.random:
            shape = (self.shape[0], self.shape[1]) if box is None else (box[1] - box[0], box[3] - box[2])
            value = tf.broadcast_to(tf.cast(value, tf.float32), (batch,) + shape)
            draw = tf.random.stateless_normal(tf.shape(value), seed=key, dtype=tf.float32)
            sigma = temporal * noise.temporal_stddev + (temporal * noise.signal_stddev) * tf.abs(value)
            value = value + sigma * draw
        return value

    def _news_read(self):
        news = self.config.news
        return any(news in i.srcs for s in self.program.sections for i in self.program.instructions(s))

    def execute(self, section, state, frame=None, counter=0, on_stage=None, track_news=True):
        """Run one section on `state` ({register: (B, H, W)}); returns (state, readouts, saturated).
        Works eagerly and inside tf.function. on_stage(stage, state) is called after each stage.

        Analog writes are computed only inside the bounding box of where FLAG can be set, known
        at trace time from the constant planes that FLAG was combined with (a stage that uses a
        few elements costs a few elements); pixels outside are left as they are, as on the chip.
        track_news=False leaves the NEWS scratch plane out when no instruction reads it (run()
        does that: NEWS then never reaches a readout)."""
        config, noise = self.config, self.noise
        state = dict(state)
        batch = tf.shape(next(iter(state.values())))[0]
        lo, hi = config.analog_min, config.analog_max
        readouts, saturated = [], tf.constant(0, tf.int64)
        written_at, clock = {}, 0  # trace-time timeline for decay, in instruction words
        counter = tf.cast(counter, tf.int64)
        steps = self.program.sections.get(section, ())
        constants = {}
        full_box = (0, self.shape[0], 0, self.shape[1])
        boxes = {}  # digital register -> bounding box of where it may be 1 (None: nowhere)

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
                key = x.tobytes()
                if key not in constants:
                    constants[key] = tf.cast(tf.constant(x.astype(np.uint8)), tf.bool)
                return constants[key]
            return x

        def read(register, box=None):
            value = _crop(state[register], box)
            if config.kind(register) == "analog" and np.isfinite(noise.decay_time_s):
                factor = noise.decay(config.seconds(clock - written_at.get(register, 0)))
                if factor != 1.0:
                    value = value * factor
            return value

        def write_analog(register, value, bus_ops, step, box):
            """Write `value` (over `box`) where FLAG is set; returns the written box of dst."""
            nonlocal saturated
            flag = _crop(state[config.flag], box)
            if noise.enabled:
                key = tf.stack([tf.constant(self.seed, tf.int64), counter * 1_000_003 + step])
                value = self._noisy(value, bus_ops, batch, key, box)
            old = _crop(state[register], box)
            value = tf.broadcast_to(tf.cast(value, tf.float32), tf.shape(old))
            clipped = tf.clip_by_value(value, lo, hi)
            if _all_true(flag):
                outside = tf.not_equal(clipped, value)
                new = clipped
            else:
                outside = tf.logical_and(tf.not_equal(clipped, value), T(flag))
                new = _select(T(flag), clipped, old)
            saturated += tf.cast(tf.math.count_nonzero(outside, dtype=tf.int32), tf.int64)
            state[register] = _paste(state[register], new, box, self.shape)
            written_at[register] = clock
            return new

        def analog(op, dst, srcs, args, bus_ops, step):
            box = box_of(config.flag)
            if box is None:  # FLAG is off everywhere: nothing is written
                return
            area = (box[1] - box[0]) * (box[3] - box[2])
            if op == "movx" or 2 * area > self.shape[0] * self.shape[1]:
                box = None  # a neighbour read needs the planes beyond the box; a crop of most of
                # the array costs more in copies than it saves
            if op == "bus":
                write_analog(dst, -tf.add_n([read(s, box) for s in srcs]), bus_ops, step, box)
            elif op in ("mov", "add", "sub"):
                a = read(srcs[0], box)
                value = a if op == "mov" else a + read(srcs[1], box) if op == "add" else a - read(srcs[1], box)
                new = write_analog(dst, value, bus_ops, step, box)
                # the expansion's first bus result stays in NEWS: -(dst as written) for mov and
                # add, -a for sub
                if dst != config.news and config.news in state and track_news:
                    news = -(new if op != "sub" else a)
                    flag, old = _crop(state[config.flag], box), _crop(state[config.news], box)
                    news = _select(T(flag), news, old) if not _all_true(flag) else news
                    state[config.news] = _paste(state[config.news], news, box, self.shape)
            elif op == "neg":
                write_analog(dst, -read(srcs[0], box), bus_ops, step, box)
            elif op == "abs":
                write_analog(dst, tf.abs(read(srcs[0], box)), bus_ops, step, box)
            elif op == "div2":
                write_analog(dst, read(srcs[0], box) * 0.5, bus_ops, step, box)
            elif op == "movx":
                dy, dx = DIRECTIONS[args[0]]
                write_analog(dst, _shifted(read(srcs[0]), dy, dx, config.edge_value), bus_ops, step, None)
            elif op == "in":
                write_analog(dst, tf.constant(args[0], tf.float32), bus_ops, step, box)
            elif op == "input":
                if frame is None:
                    raise ValueError(f"{section} step {step}: input reads the image, but this section has no frame.")
                write_analog(dst, _crop(self._fit_frame(frame), box) * args[0], bus_ops, step, box)

        previous_stage = None
        for step, (stage, ins) in enumerate(steps):
            if on_stage is not None and previous_stage is not None and stage != previous_stage:
                on_stage(previous_stage, state)
            previous_stage = stage
            op, dst, srcs, args = ins.op, ins.dst, ins.srcs, ins.args
            clock += ins.words(config)
            bus_ops = ins.words(config)
            if op in ("bus", "mov", "add", "sub", "neg", "abs", "div2", "movx", "in", "input"):
                if op == "input" and frame is None:
                    raise ValueError(f"{section} step {step}: {ins} reads the image, but this section has no frame.")
                analog(op, dst, srcs, args, bus_ops, step)
            elif op == "where":
                state[config.flag] = read(srcs[0]) >= 0
                boxes[config.flag] = full_box
            elif op == "all":
                state[config.flag] = np.ones(self.shape, bool)
            elif op == "dmov":
                boxes[dst] = box_of(srcs[0])
                state[dst] = state[srcs[0]]
            elif op == "dnot":
                state[dst] = _not(state[srcs[0]])
                boxes[dst] = full_box
            elif op in ("dor", "dnor", "dand"):
                a, b = state[srcs[0]], state[srcs[1]]
                box_a, box_b = box_of(srcs[0]), box_of(srcs[1])
                if op == "dand":
                    state[dst] = a & b if _is_const(a) and _is_const(b) else tf.logical_and(T(a), T(b))
                    boxes[dst] = intersection(box_a, box_b)
                else:
                    either = a | b if _is_const(a) and _is_const(b) else tf.logical_or(T(a), T(b))
                    state[dst] = either if op == "dor" else _not(either)
                    boxes[dst] = union(box_a, box_b) if op == "dor" else full_box
            elif op == "dset":
                state[dst] = np.ones(self.shape, bool)
            elif op == "dclr":
                state[dst] = np.zeros(self.shape, bool)
            elif op == "dshift":
                dy, dx = DIRECTIONS[args[0]]
                boxes[dst] = shifted_box(box_of(srcs[0]), dy * args[1], dx * args[1])
                state[dst] = _shifted(state[srcs[0]], dy * args[1], dx * args[1], False)
            elif op == "pattern":
                state[dst] = _pattern(*self.shape, *args)
            elif op == "readout":
                (row, col, height, width), scale, offset, pool = args
                value = tf.cast(tf.broadcast_to(T(state[srcs[0]]), (batch,) + self.shape), tf.float32)
                value = value[:, row : row + height, col : col + width] * scale + offset
                if pool > 1:
                    value = tf.nn.max_pool2d(value[..., None], pool, pool, "VALID")[..., 0]
                readouts.append(value)
            else:  # pragma: no cover - OPS and this interpreter are kept in step by the tests
                raise NotImplementedError(op)
        if on_stage is not None and previous_stage is not None:
            on_stage(previous_stage, state)
        full = (batch,) + self.shape
        state = {r: tf.broadcast_to(T(v), full) for r, v in state.items()}
        return state, readouts, saturated

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

            self._functions[section] = tf.function(run, jit_compile=self.jit, autograph=False, reduce_retracing=True)
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


def _all_true(flag):
    return isinstance(flag, np.ndarray) and flag.all()


def _not(x):
    return ~x if _is_const(x) else tf.logical_not(x)
