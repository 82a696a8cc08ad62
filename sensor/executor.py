"""Executes programs on emulated register planes with TensorFlow, for many sensors at once.

Analog registers are float32 planes (B, H, W) over a batch of B independent sensors, in sensor
units. Digital registers (and FLAG) are bit-packed over the batch, (ceil(B / 32), H, W) int32
(sensor.kernels). The program is interpreted once in Python while a `tf.function` traces it, so
each section becomes one graph that runs on CPU or GPU (sensor.interpreter walks the section):

- each analog macro is one fused XLA kernel (sensor.kernels) that reads its sources, applies
  drift, fixed-pattern and temporal noise, and writes where FLAG is set; a second, light kernel
  counts the saturated writes. Writes to one register under FLAGs proven disjoint (a tap's
  add/subtract pair) share one kernel, as planned for each section by sensor.fusion;
- digital instructions are folded into numpy constants when they do not depend on data
  (load_pattern masks, weights), and otherwise chained lazily into bitwise expressions that the
  next write evaluates inside its kernel (shifts, readouts and the section's end evaluate them
  in one fused kernel): sensor.digital;
- an analog write is emulated only inside the bounding box of the pixels its FLAG can select,
  which the interpreter knows at trace time from the constant planes FLAG was built from (the
  recurrent step, gated to two elements, costs 2/16 of the array); outside the box nothing is
  written, as on the chip (sensor.analog, sensor.planes).

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
from pixelrnn_tf.config import ConfigError
from sensor.interpreter import Interpreter
from sensor.kernels import WriteKernels, words
from sensor.machine import Scamp5
from sensor.noise import resolve_noise
from sensor.planes import to_bool


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
        self._check_readout_pattern()
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
                noise.random_writes,
                math.isfinite(noise.decay_time_s),
            ),
            jit=self.jit,
        )
        self._functions = {}

    def _check_readout_pattern(self):
        """A fitted readout fixed pattern belongs to one readout size: refuse others up front."""
        pattern = self.noise.readout_fixed_pattern
        if not pattern:
            return
        expected = (len(pattern), len(pattern[0]))
        readouts = [i for section in self.program.sections for i in self.program.instructions(section) if i.op == "readout"]
        for instruction in readouts:
            (_, _, height, width), pool = instruction.args[0], instruction.args[3]
            if (height // pool, width // pool) != expected:
                raise ConfigError(
                    f"The noise model's readout fixed pattern was fitted for a {expected[0]}x{expected[1]} readout, "
                    f"but this program reads out {height // pool}x{width // pool} values. Use --noise published "
                    "(the per-operation terms alone), or fit a pattern for this readout with `pixelrnn calibrate-noise`."
                )

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
        return {r: to_bool(v, batch) if self.config.kind(r) == "digital" else v for r, v in state.items()}

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
        return Interpreter(self, section, state, frame, counter, on_stage, track_news, batch).run()

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
            readouts = []  # a camera reads out every frame, in order, before the window's own readout
            for t in range(w0, w0 + window):
                state, frame_readouts, sat = self._function("frame")(state, clips[:, t], tf.constant(t, tf.int64))
                readouts += frame_readouts
                saturated += int(sat)
                if progress is not None:
                    progress(batch)
            state, window_readouts, sat = self._function("readout")(state, clips[:, w0], tf.constant(w0, tf.int64))
            saturated += int(sat)
            outputs.append(np.stack([r.numpy() for r in readouts + list(window_readouts)], axis=-1))
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
