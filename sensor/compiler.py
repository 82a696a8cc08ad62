"""Compiling a trained pixelrnn-tf model into a program for the pixel processor array.

The mapping follows PixelRNN (So et al., CVPR 2024) and Bose et al. (ICCV 2019) on SCAMP-5. The
256x256 array is cut into a 4x4 grid of "elements" of 64x64 PEs, element (i, j) holding rows
64i.., columns 64j... Channel k of a CNN layer runs in element (k mod 4, k div 4), the model's
column-major tiling order, so the pooled maps land where `tile_channels` puts them.

CNN layer l (input bit plane x, the binarised 64x64 frame copied into every element):
    c = sum over taps of input_white * (+1 if x bit == w bit else -1)        (XNOR-accumulate)
  walking the 25 taps of each 5x5 kernel in a serpentine, shifting x one pixel between taps.
  The tap's weight bits form a plane that is constant per element; a validity plane stops data
  shifted across an element border from counting (the model zero-pads, so those taps add 0).
    q = sign(maxpool_4x4(relu(c)) - theta)
  For integer sums c this is OR over the 4x4 block of [c >= ceil(theta)], and +1 everywhere
  when theta <= 0. The comparator tests input_white * c against the level of sensor.levels
  (the midpoint below the first passing sum; the exporter writes the same level). The 4x4 OR
  is done on bits, then the block anchors (4Y, 4X) are compacted into element (0, 0), which is
  then exactly the model's tiled 64x64 image, and copied into the elements that need it.

Recurrent step (PixelRNN): x_t and h_(t-1) share an element and shift together, element (0, 0)
holds [w_f | u_f] and element (0, 1) [w_o | u_o]; per tap both products are XNORed and
    acc += 2 u where both agree, -= 2 u where both differ (0 where they differ from each other),
  u = recurrent_white, so acc = u (w*x + u*h) in both elements at once. f = [acc >= the level
  of theta at white u] in element (0, 0); h := XNOR(f, h), copied to element (0, 1); o = acc of
  element (0, 1) is read out at the window's last frame. (The four-element layout [x | h ; x | h] needs the
  partial sums moved 64 PEs by analog neighbour transfers, 64 noisy operations; sharing the
  element moves the bits instead, which is exact and free of noise.)

Units and saturation. Readouts are returned in model units: sensor value / recurrent_white. With
input_white = 10 (the paper's) a CNN sum |c| <= 25 spans +-250 units and saturates at +-128;
the executor counts such writes. The recurrent sums |w*x + u*h| <= 50, so recurrent_white
defaults to the largest unit that keeps 50 u inside the range (2 on SCAMP-5) and the readout
never saturates. With input_white <= 5 nothing saturates anywhere and the emulator equals the
Keras model exactly. On a noisy array that gain leaves the recurrent sums a few analog units
per model unit, within the noise; `pixelrnn emulate --noise ...` therefore picks the largest
gain that keeps 99% of the model's trained readouts in range (recurrent_gain).

Drift calibration (compile(..., drift=noise_model), see _Calibration): the same mapping with the
constants, comparator levels and readout offset corrected for the deterministic drift of the
array's analog operations, and a "+0" write where a tap neither adds nor subtracts, so that
every accumulator drifts alike.
"""

import math

import numpy as np

from pixelrnn_tf.tables import in_pixel_tables
from sensor import instructions as I
from sensor.errors import CompileError
from sensor.levels import checked_count_level, checked_frame_level
from sensor.machine import Scamp5
from sensor.program import Program

SUPPORTED = ("pixelrnn", "srnn", "cnn")
# Sensor units per model unit of the sampled input frame (input_(register, INPUT_SCALE)).
INPUT_SCALE = 16.0

__all__ = ["CompileError", "INPUT_SCALE", "SUPPORTED", "compile", "compile_tables", "default_recurrent_white", "recurrent_gain"]


def compile(model, input_white=10, recurrent_white=None, config=None, drift=None, input_scale=INPUT_SCALE):  # noqa: A001
    """A Program that runs the in-pixel part of `model` (clips -> readouts) on `config`.

    drift: None for the exact program, or the analog noise model (a sensor.NoiseModel, 'scamp5'
    or 'array') whose deterministic part (drift gain and offset per bus operation) the program
    is calibrated against; see _Calibration."""
    return compile_tables(in_pixel_tables(model), input_white, recurrent_white, config, drift, input_scale)


def default_recurrent_white(kernel_size, config):
    """The largest whole number of sensor units per model unit that never saturates a recurrent
    sum |w*x + u*h| <= 2 k^2 (2 on SCAMP-5 for 5x5 kernels)."""
    return float(max(1, int(config.analog_max // (2 * kernel_size * kernel_size))))


def recurrent_gain(readouts, config, quantile=99.0):
    """recurrent_white for a noisy array: the largest whole number of sensor units per model unit
    that keeps `quantile`% of the model's readouts (model units, e.g. of training clips) inside the
    analog range. The exact program's gain never saturates, but trained readouts stay far smaller,
    and a larger gain lifts them above the analog noise: the rare extremes that saturate cost less
    than the noise they escape."""
    level = max(float(np.percentile(np.abs(np.asarray(readouts)).ravel(), quantile)), 1.0)
    return float(max(1, int(min(-config.analog_min, config.analog_max) // level)))


def _check_binary(name, array):
    array = np.asarray(array, np.float32)
    if not np.all(np.abs(array) == 1):
        raise CompileError(f"{name} must hold only +-1 (the binary kernel), got values {np.unique(array)[:5]}.")
    return array


def _check_tables(tables):
    """The kernels of `tables` (InPixelTables) checked for what this compiler maps."""
    if not tables.binary:
        raise CompileError("Only binary models run on the sensor; this one is full precision.")
    if tables.arch not in SUPPORTED:
        raise CompileError(f"The compiler maps the archs {', '.join(SUPPORTED)}; this model is {tables.arch!r}.")
    if tables.output_threshold is not None:
        raise CompileError("PixelRNN with a ternary output (output_threshold) is not compiled yet; use the linear output.")
    if tables.rnn_input_pool != 1:
        raise CompileError(
            f"Pooling the CNN's output before the cell (rnn_input_pool={tables.rnn_input_pool}) is not mapped to the "
            "sensor yet; pool the readout instead (readout_pool), as the PixelRNN authors' code does."
        )
    kernels = [_check_binary(f"cnn_kernels[{l}]", k) for l, k in enumerate(tables.cnn_kernels)]
    if not 1 <= len(kernels) <= 2 or len(tables.cnn_thresholds) != len(kernels):
        raise CompileError("cnn_kernels and cnn_thresholds need one entry per CNN layer (1 or 2 layers).")
    for layer, kernel in enumerate(kernels):
        if kernel.shape[2] != 1:
            raise CompileError(f"cnn_kernels[{layer}] has {kernel.shape[2]} input channels; the sensor convolves one plane.")
    cell = {name: _check_binary(name, k) for name, k in tables.cell_kernels.items()}
    return kernels, cell


def compile_tables(tables, input_white=10, recurrent_white=None, config=None, drift=None, input_scale=INPUT_SCALE):
    """A Program from `tables` (pixelrnn_tf.InPixelTables, e.g. read back from an export with
    export.load_in_pixel_tables). drift: as in compile()."""
    config = config or Scamp5()
    if input_white <= 0:
        raise CompileError(f"input_white must be > 0, got {input_white}.")
    kernels, cell = _check_tables(tables)
    layout = _Layout(config, int(math.isqrt(kernels[0].shape[-1])), int(tables.pool_size), kernels[0].shape[0])
    if recurrent_white is None:
        recurrent_white = default_recurrent_white(layout.kernel, config)
    levels = {
        "input": checked_frame_level("input_threshold", tables.input_threshold or 0.0, input_scale, config),
        "cnn": [
            checked_count_level(f"theta_{l + 1}", t, input_white, config, relu=True)
            for l, t in enumerate(tables.cnn_thresholds)
        ],
        "recurrent": None,
    }
    if tables.arch in ("pixelrnn", "srnn"):
        levels["recurrent"] = checked_count_level(
            "forget_threshold", tables.forget_threshold or 0.0, recurrent_white, config, option="--recurrent-white"
        )
    b = _Builder(config, layout, _calibration(drift, config))
    sections = {
        "reset": _reset(b, tables.arch),
        "frame": _frame(b, tables.arch, kernels, cell, levels, input_white, recurrent_white, input_scale),
        "readout": _readout(b, tables.arch, recurrent_white, int(tables.readout_pool)),
    }
    info = {
        "arch": tables.arch,
        "cnn_layers": len(kernels),
        "input_white": float(input_white),
        "recurrent_white": float(recurrent_white),
        "input_scale": float(input_scale),
        "levels": levels,
        "frame": layout.size // layout.pool if layout.pool == 4 else None,
        "calibrated_for_drift": b.calibration is not None,
    }
    unit = float(recurrent_white) if tables.arch == "pixelrnn" else 1.0
    return Program(sections, int(tables.window), unit, info)


def _calibration(drift, config):
    if drift is None:
        return None
    from sensor.noise import resolve_noise

    model = resolve_noise(drift, config.noise)
    return _Calibration(model, config) if model.drift_offset or model.drift_gain else None


def _reset(b, arch):
    """h := +1 at the start of every window."""
    b.stage = "reset"
    if arch in ("pixelrnn", "srnn"):
        b.emit(I.dset("h"))
    return b.take()


def _frame(b, arch, kernels, cell, levels, input_white, recurrent_white, input_scale):
    """Input binarisation, the CNN layers and the recurrent step, once per frame."""
    layout = b.layout
    b.stage = "input"
    b.emit(I.input_("pix", input_scale))
    if b.calibration:  # frame >= threshold, with the sample's and the comparator's drift
        b.emit(I.in_("ct", b.calibration.input_level(levels["input"])))
        b.emit(I.sub("pix", "pix", "ct"))
    elif levels["input"]:
        b.emit(I.in_("ct", levels["input"]))
        b.emit(I.sub("pix", "pix", "ct"))
    b.emit(I.where("pix"))
    b.emit(I.dmov("x", "FLAG"))
    b.emit(I.all_())
    for layer, (kernel, level) in enumerate(zip(kernels, levels["cnn"])):
        b.stage = f"cnn{layer + 1}"
        per_element = {layout.element_of_channel(k): [kernel[:, :, 0, k]] for k in range(kernel.shape[-1])}
        b.conv(["x"], per_element, input_white, layout.all_elements)
        b.threshold("g", level)
        b.pool_or("g")
        b.compact("g")
        last = layer == len(kernels) - 1
        targets = layout.all_elements if not last else ([(0, 0), (0, 1)] if arch == "pixelrnn" else [(0, 0)])
        b.replicate("g", "x", targets)
    if arch in ("pixelrnn", "srnn"):
        b.stage = "rnn"
        if arch == "pixelrnn":
            per_element = {(0, 0): [cell["w_f"], cell["u_f"]], (0, 1): [cell["w_o"], cell["u_o"]]}
        else:
            per_element = {(0, 0): [cell["w_h"], cell["u_h"]]}
        b.conv(["x", "h"], per_element, recurrent_white, sorted(per_element))
        b.threshold("f", levels["recurrent"])
        if arch == "pixelrnn":
            b.xnor("f", "f", "h", "t")
        b.replicate("f", "h", sorted(per_element), source=(0, 0))
    return b.take()


def _readout(b, arch, recurrent_white, pool):
    """What leaves the chip at the window's last frame, in model units."""
    b.stage = "readout"
    e = b.layout.element
    if arch == "pixelrnn":
        # o = acc / u; calibrated, acc carries the known drift offset of the accumulation
        offset = -b.accumulated_offset(b.layout.taps) / recurrent_white if b.calibration else 0.0
        b.emit(I.readout("acc", (0, e, e, e), 1.0 / recurrent_white, offset, pool))
    else:
        b.emit(I.readout("h" if arch == "srnn" else "x", (0, 0, e, e), 2.0, -1.0, pool))
    return b.take()


class _Layout:
    def __init__(self, config, grid, pool, kernel_size):
        self.size = config.height
        if config.height != config.width:
            raise CompileError(f"{config.name} is {config.height}x{config.width}; the mapping needs a square array.")
        self.element = self.size // grid
        if self.element * grid != self.size or self.element % pool:
            raise CompileError(f"A {grid}x{grid} grid of elements does not tile {config.name}'s {self.size}x{self.size} array.")
        if self.size // pool != self.element:
            raise CompileError(
                f"The tiled CNN output ({self.size // pool}x{self.size // pool}) must fill one element "
                f"({self.element}x{self.element}); use a {pool * self.element}-wide array."
            )
        self.grid, self.pool, self.kernel = grid, pool, kernel_size
        self.taps = kernel_size * kernel_size
        self.all_elements = [(i, j) for i in range(grid) for j in range(grid)]

    def element_of_channel(self, k):
        return (k % self.grid, k // self.grid)


class _Calibration:
    """The deterministic part of an array's analog noise, to calibrate a program against.

    Per macro of n bus operations a written value v becomes gain_n v + offset_n (the drift of
    sensor.noise; the random and fixed-pattern parts average to zero). The calibrated program:
    - loads every constant so that it is stored as intended (in_ writes (target - offset) / gain);
    - writes every pixel once per tap (+c where the bits agree, -c where they differ, +0 where
      neither, which includes the taps that fall outside the element), so every accumulator
      goes through the same K writes and picks up the same drift;
    - pre-emphasises the constant of each kernel row by 1 / gain^(K - k), the damping of the
      writes still to come, averaged over the row's taps k, so that the taps weigh the same at
      the end (within +-1% over a row on SCAMP-5; one load per tap would cost 20 more array
      writes per convolution for a residual of about 0.05 of a step);
    - and so ends with acc = white * sum + B, with B the offset of the K writes; the comparator
      levels and the readout offset take B (and the comparator's own drift) into account.
    On an array with that drift (and no other noise) this program computes what the exact one
    computes on an ideal array; with the SCAMP-5 preset it removes the drift of about -20 units
    per 5x5 convolution that otherwise moves every CNN sum across its threshold. It is tied to
    its noise model (on an ideal array it is off by B), and costs 3 instructions per tap more.
    The input binarisation is calibrated the same way. Not calibrated: the fixed-pattern offsets,
    which differ per pixel, and the temporal noise."""

    def __init__(self, noise, config):
        self.noise, self.config = noise, config

    def affine(self, op):
        return self.noise.drift_terms(int(self.config.bus_ops[op]))

    def load(self, target):
        """The in_ argument that is stored as `target`."""
        gain, offset = self.affine("in")
        return (target - offset) / gain

    def emphasis(self, k, taps):
        """What the K - k writes after tap k (0-based) and its own leave of one unit it adds."""
        gain, _ = self.affine("add")
        return gain ** (taps - k)

    def offset(self, taps):
        """B: the offset K add/sub writes leave on an accumulator that starts at 0."""
        gain, offset = self.affine("add")
        return offset * sum(gain**j for j in range(taps))

    def input_level(self, level):
        """The in_ argument of ct such that input_(pix, scale); sub(pix, pix, ct); where(pix)
        tests scale * frame >= level."""
        gain, offset = self.affine("input")
        return self.comparator_load(gain * level + offset)

    def comparator_load(self, level):
        """The in_ argument of ct such that sub(tmp, acc, ct); where(tmp) tests acc >= level."""
        gain, offset = self.affine("sub")
        return self.load(level + offset / gain)


class _Builder:
    def __init__(self, config, layout, calibration=None):
        self.config, self.layout, self.steps, self.stage = config, layout, [], None
        self.full = config.height - 1
        self.calibration = calibration

    def accumulated_offset(self, taps):
        return self.calibration.offset(taps) if self.calibration else 0.0

    def load(self, register, value):
        """in_(register, value), loaded so that the register holds `value` when calibrated."""
        self.emit(I.in_(register, self.calibration.load(value) if self.calibration else value))

    def emit(self, instruction):
        self.steps.append((self.stage, instruction))

    def take(self):
        steps, self.steps = tuple(self.steps), []
        return steps

    # ---- digital helpers
    def xnor(self, dst, a, b, tmp):
        self.emit(I.dand(tmp, a, b))
        self.emit(I.dnor(dst, a, b))
        self.emit(I.dor(dst, dst, tmp))

    def elements(self, dst, elements, tmp="pt"):
        """dst := 1 inside the given elements."""
        e = self.layout.element
        if not elements:
            self.emit(I.dclr(dst))
            return
        if len(elements) == self.layout.grid**2:
            self.emit(I.dset(dst))
            return
        for n, (i, j) in enumerate(elements):
            self.emit(I.pattern(dst if n == 0 else tmp, i * e, j * e, e - 1, e - 1))
            if n:
                self.emit(I.dor(dst, dst, tmp))

    def lines(self, dst, indices, axis, local, tmp="pt"):
        """dst := 1 on the given rows (axis 0) or columns (axis 1): global indices, or with
        local=True the same local index in every element."""
        e, full = self.layout.element, self.full
        any_element = full & ~(e - 1) if local else 0
        for n, index in enumerate(indices):
            target = dst if n == 0 else tmp
            if axis == 0:
                self.emit(I.pattern(target, index, 0, any_element, full))
            else:
                self.emit(I.pattern(target, 0, index, full, any_element))
            if n:
                self.emit(I.dor(dst, dst, tmp))

    def validity(self, dst, dy, dx, active):
        """dst := 1 where the input at offset (dy, dx) lies inside the same element, within the
        active elements: zero padding at every element border."""
        e = self.layout.element
        bad_rows = list(range(e - dy, e)) if dy > 0 else list(range(0, -dy))
        bad_cols = list(range(e - dx, e)) if dx > 0 else list(range(0, -dx))
        if bad_rows:
            self.lines("vr", bad_rows, 0, True)
        else:
            self.emit(I.dclr("vr"))
        if bad_cols:
            self.lines("vc", bad_cols, 1, True)
        else:
            self.emit(I.dclr("vc"))
        self.emit(I.dnor(dst, "vr", "vc"))
        if len(active) < self.layout.grid**2:
            self.elements("va", active)
            self.emit(I.dand(dst, dst, "va"))

    # ---- stages
    def conv(self, planes, kernels, white, active):
        """acc := white * sum over planes p and taps of (+1 if p bit == w_p bit else -1), with one
        kernel per plane per element (`kernels[(i, j)] = [k_plane0, k_plane1]`); the planes are kept."""
        k = self.layout.kernel
        half = k // 2
        calibration = self.calibration
        partial = len(active) < self.layout.grid**2
        if calibration:
            self.load("z", 0.0)
            if partial:  # tap constants are loaded where the convolution runs only
                self.elements("ca", active)
        else:
            self.emit(I.in_("c", white * len(planes)))
        self.load("acc", 0.0)
        # Each tap's plane is shifted straight from a copy of its row, never walked: a walk pushes
        # pixels off the array edge that later taps still need.
        for row in range(k):
            dy = row - half
            for n, p in enumerate(planes):
                if dy:
                    self.emit(I.dshift(f"r{n}", p, "south" if dy > 0 else "north", abs(dy)))
                else:
                    self.emit(I.dmov(f"r{n}", p))
            for col in range(k):
                dx = col - half
                shifted = []
                for n in range(len(planes)):
                    if dx:
                        self.emit(I.dshift(f"s{n}", f"r{n}", "east" if dx > 0 else "west", abs(dx)))
                    else:
                        self.emit(I.dmov(f"s{n}", f"r{n}"))
                    shifted.append(f"s{n}")
                if calibration and col == 0:  # one load per kernel row (see _Calibration)
                    if partial:
                        self.emit(I.dmov("FLAG", "ca"))
                    emphasis = np.mean([calibration.emphasis(row * k + c, k * k) for c in range(k)])
                    self.load("c", white * len(planes) / emphasis)
                    if partial:
                        self.emit(I.all_())
                self._tap(shifted, kernels, row, col, active)

    def _tap(self, shifted, kernels, row, col, active):
        """One tap: XNOR the shifted planes with the tap's weight planes, add or subtract."""
        half = self.layout.kernel // 2
        self.validity("v", row - half, col - half, active)
        agree = []
        for n, s in enumerate(shifted):
            ones = [el for el in active if kernels[el][n][row, col] > 0]
            self.elements("w", ones)
            self.xnor(f"ag{n}", s, "w", "t")
            agree.append(f"ag{n}")
        if len(agree) == 1:
            self.emit(I.dand("pos", agree[0], "v"))
            self.emit(I.dnot("neg", agree[0]))
        else:  # both agree: +2, both differ: -2, mixed: 0
            self.emit(I.dand("pos", agree[0], agree[1]))
            self.emit(I.dand("pos", "pos", "v"))
            self.emit(I.dnor("neg", agree[0], agree[1]))
        self.emit(I.dand("neg", "neg", "v"))
        self.emit(I.dmov("FLAG", "pos"))
        self.emit(I.add("acc", "acc", "c"))
        self.emit(I.dmov("FLAG", "neg"))
        self.emit(I.sub("acc", "acc", "c"))
        if self.calibration:  # the rest of the pixels take the tap's drift too (see _Calibration)
            self.emit(I.dnor("rest", "pos", "neg"))
            if len(active) < self.layout.grid**2:  # of the elements the convolution runs in
                self.emit(I.dand("rest", "rest", "ca"))
            self.emit(I.dmov("FLAG", "rest"))
            self.emit(I.add("acc", "acc", "z"))
        self.emit(I.all_())

    def threshold(self, dst, level):
        """dst := [acc >= level] (sensor.levels); level None (a threshold a ReLU always passes): all ones."""
        if level is None:
            self.emit(I.dset(dst))
            return
        if self.calibration:
            level = self.calibration.comparator_load(level + self.calibration.offset(self.layout.taps))
        self.emit(I.in_("ct", level))
        self.emit(I.sub("tmp", "acc", "ct"))
        self.emit(I.where("tmp"))
        self.emit(I.dmov(dst, "FLAG"))
        self.emit(I.all_())

    def pool_or(self, g):
        """g at each block anchor := OR of its pool x pool block (max-pool of thresholded bits)."""
        step = 1
        while step < self.layout.pool:
            for direction in ("south", "east"):
                self.emit(I.dshift("t", g, direction, step))
                self.emit(I.dor(g, g, "t"))
            step *= 2

    def compact(self, g):
        """Move the anchors (pool Y, pool X) to (Y, X): the tiled image into element (0, 0).

        Each sample moves by (pool - 1) Y rows; the shift is done bit by bit, least significant
        first, moving only the samples whose shift has that bit (a masked shift)."""
        pool, size = self.layout.pool, self.layout.size
        self.emit(I.pattern("t", 0, 0, self.full & ~(pool - 1), self.full & ~(pool - 1)))
        self.emit(I.dand(g, g, "t"))
        samples = np.arange(size // pool)
        shifts = (pool - 1) * samples
        for axis, direction in ((0, "south"), (1, "east")):
            position = pool * samples
            bit = 0
            while (1 << bit) <= shifts.max():
                moving = (shifts >> bit) & 1 == 1
                if moving.any():
                    self.lines("mk", [int(p) for p in position[moving]], axis, False)
                    self.emit(I.dnot("nm", "mk"))
                    self.emit(I.dand("mv", g, "mk"))
                    self.emit(I.dand(g, g, "nm"))
                    self.emit(I.dshift("mv", "mv", direction, 1 << bit))
                    self.emit(I.dor(g, g, "mv"))
                    position = position - moving * (1 << bit)
                    if len(set(position.tolist())) != len(position):  # pragma: no cover - a mapping bug
                        raise CompileError("compaction would merge two samples")
                bit += 1
            assert (position == samples).all()

    def replicate(self, src, dst, elements, source=(0, 0)):
        """dst := the element `source` of src copied into every element listed (zeros elsewhere)."""
        e = self.layout.element
        self.elements("t", [source])
        self.emit(I.dand(dst, src, "t"))
        for i, j in elements:
            if (i, j) == source:
                continue
            dy, dx = i - source[0], j - source[1]
            self.emit(I.dmov("t2", dst))
            if dy:
                self.emit(I.dshift("t2", "t2", "north" if dy > 0 else "south", abs(dy) * e))
            if dx:
                self.emit(I.dshift("t2", "t2", "west" if dx > 0 else "east", abs(dx) * e))
            self.elements("t", [(i, j)])
            self.emit(I.dand("t2", "t2", "t"))
            self.emit(I.dor(dst, dst, "t2"))
