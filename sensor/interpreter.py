"""One execution of one section of a program, interpreted in Python while TensorFlow traces it.

`Interpreter` walks the section's instructions once and builds the graph that emulates them. It
holds what the execution knows at trace time: the register file (analog planes in
sensor.analog, digital ones in sensor.digital, in one dict so that the registers keep their
order), the clock in instruction words (for decay), the plan of fused writes (sensor.fusion),
the readouts and the saturation counts. Each instruction goes to the handler its op names in
`_HANDLERS`:

- an analog write (or a planned group of them) becomes one fused kernel (sensor.kernels) over the
  bounding box of where its FLAG can be set, with a second, light kernel that counts the
  saturated writes; its noise key is write_key(seed, counter, step) with the step of the group's
  first write;
- `where` packs the comparator's bits into FLAG; the other digital instructions are folded,
  deferred or computed by DigitalPlanes;
- a readout cuts, scales and pools a plane.
"""

from typing import Any, NamedTuple, Optional, Tuple

import numpy as np

from pixelrnn_tf._keras import tf
from sensor.analog import ANALOG_OPS, AnalogPlanes, Boxed
from sensor.digital import DIGITAL_OPS, DigitalPlanes, Lazy, offset_leaves
from sensor.fusion import WriteGroup, plan_writes
from sensor.instructions import DIRECTIONS
from sensor.kernels import hash_normal, pack, words, write_key
from sensor.planes import Constants, all_true, crop, is_constant, select, shifted, to_bool, union


# draw keys of comparisons and readouts: steps past any section's writes, below the frame stride
_COMPARATOR_STEPS = 300_000


class PendingWrite(NamedTuple):
    """An analog write waiting for its kernel, with FLAG as it was at its instruction: FLAG's
    value, the box where FLAG can be set, and the clock."""

    instruction: Any
    flag: Any
    box: Optional[Tuple[int, int, int, int]]
    clock: int


def prepare(state, frame, batch, config):
    """(state as a new dict with bool digital planes packed, batch size): the batch is told by an
    analog or bool plane, or by the frame, when not given."""
    state = dict(state)
    if batch is None:
        known = [v for r, v in state.items() if config.kind(r) == "analog" or v.dtype == tf.bool]
        known += [frame] if frame is not None else []
        if not known:
            raise ValueError("execute() cannot tell the batch size from this state; pass batch=.")
        batch = tf.shape(known[0])[0]
    for register, value in list(state.items()):
        if config.kind(register) == "digital" and not is_constant(value) and value.dtype == tf.bool:
            state[register] = pack(value)
    return state, batch


class Interpreter:
    """Executes `section` of emulator's program on `state` (see Emulator.execute)."""

    def __init__(self, emulator, section, state, frame, counter, on_stage, track_news, batch):
        config = emulator.config
        self.emulator, self.config, self.shape, self.kernels = emulator, config, emulator.shape, emulator.kernels
        self.section, self.frame, self.on_stage = section, frame, on_stage
        self.state, self.batch = prepare(state, frame, batch, config)
        self.counter = tf.cast(counter, tf.int64)
        self.steps = emulator.program.sections.get(section, ())
        self.track_news = track_news and config.news in self.state
        self.tensor = Constants()
        self.analog = AnalogPlanes(self.state, self.shape, config, emulator.noise, self.kernels)
        self.digital = DigitalPlanes(self.state, self.shape, config.flag, self.kernels, self.tensor)
        fuse = emulator.fuse and not self.track_news  # NEWS after each write needs the writes one by one
        self.plan = plan_writes(self.steps, self.state, self.shape, config.flag) if fuse else {}
        self.clock = 0  # instruction words since the section started
        self.stage = None
        self.readouts, self.saturated = [], []

    def run(self):
        """Returns (state, readouts, saturated), as Emulator.execute."""
        index = 0
        while index < len(self.steps):
            stage, instruction = self.steps[index]
            self._enter(stage)
            self.clock += instruction.words(self.config)
            index = _HANDLERS.get(instruction.op, Interpreter._digital)(self, index, instruction)
        if self.on_stage is not None and self.stage is not None:
            self.on_stage(self.stage, self.physical(unpacked=True))
        config, batch = self.config, self.batch
        state = {
            r: tf.broadcast_to(self.tensor(v), ((batch,) if config.kind(r) == "analog" else (words(batch),)) + self.shape)
            for r, v in self.physical().items()
        }
        saturated = tf.add_n([tf.cast(s, tf.int64) for s in self.saturated]) if self.saturated else tf.constant(0, tf.int64)
        return state, self.readouts, saturated

    def _enter(self, stage):
        """Report the stage that just ended to on_stage, if any."""
        if self.on_stage is not None and self.stage is not None and stage != self.stage:
            self.on_stage(self.stage, self.physical(unpacked=True))
        self.stage = stage

    def physical(self, unpacked=False):
        """The registers as the chip holds them: analog planes pasted together and clipped;
        digital planes packed, or unpacked to (B, H, W) bool."""
        planes = {}
        for register in self.state:
            value = self._materialize(register)
            if self.config.kind(register) == "analog":
                planes[register] = self.kernels.clip(value)
            elif unpacked:
                planes[register] = to_bool(self.tensor(value), self.batch)
            else:
                planes[register] = value
        return planes

    def _materialize(self, register):
        """The register's whole plane: a lazy digital value evaluated, a boxed analog one pasted."""
        value = self.state[register]
        if isinstance(value, Lazy):
            return self.digital.materialize(register)
        if isinstance(value, Boxed):
            return self.analog.materialize(register)
        return value

    # ---------------------------------------------------------------- handlers
    def _write(self, index, instruction):
        """An analog write, or the planned group it starts; returns the step after it."""
        if instruction.op == "input" and self.frame is None:
            raise ValueError(f"{self.section} step {index}: {instruction} reads the image, but this section has no frame.")
        group = self.plan.get(index) or WriteGroup(index, index + 1, (index,))
        flag = self.config.flag
        writes = [PendingWrite(instruction, self.state[flag], self.digital.box_of(flag), self.clock)]
        for k in range(index + 1, group.end):
            step = self.steps[k][1]
            self.clock += step.words(self.config)
            if k in group.writes:
                writes.append(PendingWrite(step, self.state[flag], self.digital.box_of(flag), self.clock))
            else:
                self.digital.run(step)
        result = self._run_writes(writes, index)
        self.analog.written_at[instruction.dst] = self.clock
        news = self.config.news
        if result is not None and instruction.op in ("mov", "add", "sub") and instruction.dst != news and self.track_news:
            self._update_news(instruction, *result)
        return group.end

    def _where(self, index, instruction):
        # clipping and decay (a positive factor) do not change the sign: compare the raw plane
        plane = self.analog.view(instruction.srcs[0], None)
        stddev = self.emulator.noise.comparator_stddev
        key = write_key(self.emulator.seed, self.counter, _COMPARATOR_STEPS + index) if stddev else None
        if stddev and plane.shape.rank == 2:
            plane = tf.broadcast_to(plane, (self.batch,) + tuple(plane.shape))
        self.digital.compare(self.kernels.sign_bits(plane, stddev, key))
        return index + 1

    def _digital(self, index, instruction):
        self.digital.run(instruction)
        return index + 1

    def _readout(self, index, instruction):
        (row, col, height, width), scale, offset, pool = instruction.args
        source = self._materialize(instruction.srcs[0])
        if self.config.kind(instruction.srcs[0]) == "analog":
            value = tf.broadcast_to(self.kernels.clip(source), (self.batch,) + self.shape)
        else:
            value = to_bool(self.tensor(source), self.batch)
        value = tf.cast(value, tf.float32)
        noise = self.emulator.noise
        rows, cols = noise.readout_shift
        if rows or cols:  # the chip's readout window sits displaced; beyond the array it reads 0
            value = shifted(value, rows, cols, 0.0)
        value = value[:, row : row + height, col : col + width] * scale + offset
        if pool > 1:
            value = tf.nn.max_pool2d(value[..., None], pool, pool, "VALID")[..., 0]
        if noise.readout_stage:
            value = self._readout_stage(value, index, scale, offset)
        self.readouts.append(value)
        return index + 1

    def _readout_stage(self, value, index, scale, offset):
        """The fitted readout path of a real chip (sensor.noise): gain, offset, fixed pattern and
        Gaussian noise, then the range of the readout's codes."""
        noise = self.emulator.noise
        value = value * noise.readout_gain + noise.readout_offset
        if noise.readout_fixed_pattern:
            value = value + np.asarray(noise.readout_fixed_pattern, np.float32)  # shape checked by the Emulator
        if noise.readout_stddev:
            key = write_key(self.emulator.seed, self.counter, _COMPARATOR_STEPS + len(self.steps) + index)
            value = value + noise.readout_stddev * hash_normal(tf.shape(value), key)
        # the chip's readout path ends in 8-bit codes, value = (code - 127) sensor units: the
        # program's own readout offset is the host's correction and does not move that range
        lo, hi = sorted((-127.0 * scale, 128.0 * scale))
        return tf.clip_by_value(value, lo, hi)

    # ---------------------------------------------------------------- analog writes
    def _run_writes(self, writes, step):
        """Run PendingWrites to one register, under disjoint FLAGs, as one kernel. Returns (new
        plane, the first write's sources, box), or None when FLAG is set nowhere."""
        box = None
        for write in writes:
            box = union(box, write.box)
        if box is None:  # FLAG is off everywhere: nothing is written
            return None
        area = (box[1] - box[0]) * (box[3] - box[2])
        if any(w.instruction.op == "movx" for w in writes) or 2 * area > self.shape[0] * self.shape[1]:
            box = None  # a neighbour read needs the planes beyond the box; a crop of most of
            # the array costs more in copies than it saves
        structure, sources, leaves, scalars = self._kernel_inputs(writes, box)
        # writes of one macro cost (add and sub: 2 bus operations) drift and draw alike:
        # the kernel then selects each pixel's value first and applies the noise once
        shared = len(writes) > 1 and all(x[1:6] == scalars[0][1:6] for x in scalars)
        scalars = [tf.constant(x, tf.float32) for x in scalars]
        emulator = self.emulator
        fixed = self.tensor(crop(emulator.fixed_pattern, box)) if emulator.noise.fixed_pattern_stddev else None
        key = write_key(emulator.seed, self.counter, step)
        dst = writes[0].instruction.dst
        old = self.analog.view(dst, box)
        if old.shape.rank == 2:  # an analog plane given without a batch axis
            old = tf.broadcast_to(old, (self.batch,) + old.shape)
        new, clipped = self.kernels(tuple(structure), old, sources, leaves, scalars, fixed, key, shared)
        self.saturated.append(clipped)
        self.analog.put(dst, new, box)
        return new, sources[0], box

    def _kernel_inputs(self, writes, box):
        """What the kernel takes for writes over box: its structure ((op, sources, FLAG
        expression), ...), the source planes, the leaf planes of the FLAG expressions and the
        scalars, one entry per write."""
        structure, sources, leaves, scalars = [], [], [], []
        for write in writes:
            op, planes, values = self._write_spec(write.instruction, box, write.clock)
            gate = None
            if not all_true(write.flag):
                gate, own_leaves = self.digital.expression(write.flag, box)
                gate = offset_leaves(gate, len(leaves))
                leaves += own_leaves
            structure.append((op, len(planes), gate))
            sources.append(tuple(planes))
            scalars.append(values)
        return structure, sources, leaves, scalars

    def _write_spec(self, instruction, box, at):
        """(kernel op, sources, scalars) of one analog macro over box, executed at clock `at`."""
        op, srcs, args = instruction.op, instruction.srcs, instruction.args
        constant, sources, factors = 0.0, [], []
        if op == "movx":
            dy, dx = DIRECTIONS[args[0]]
            sources = [shifted(self.analog.read(srcs[0], at), dy, dx, self.config.edge_value)]
            op = "mov"
        elif op == "input":
            sources, constant, op = [crop(self.emulator._fit_frame(self.frame), box)], args[0], "scale"
        elif op == "in":
            constant = args[0]
        else:
            sources = [self.analog.view(s, box) for s in srcs]
            factors = [self.analog.decay_factor(s, at) for s in srcs]
        factors += [1.0] * (len(sources) - len(factors))
        scalars = [constant] + self.emulator._noise_scalars(instruction.words(self.config)) + factors
        return op, sources, scalars

    def _update_news(self, instruction, new, sources, box):
        """mov, add and sub leave -(their first bus result) in NEWS: -(dst as written) for mov
        and add, -a for sub."""
        news = self.config.news
        flag = crop(self.digital.evaluate(self.state[self.config.flag]), box)
        value = -self.kernels.clip(new if instruction.op != "sub" else sources[0])
        if not all_true(flag):
            value = select(to_bool(self.tensor(flag), self.batch), value, self.analog.view(news, box))
        self.analog.put(news, value, box)


_HANDLERS = {
    **{op: Interpreter._write for op in ANALOG_OPS},
    **{op: Interpreter._digital for op in DIGITAL_OPS},
    "where": Interpreter._where,
    "readout": Interpreter._readout,
}
