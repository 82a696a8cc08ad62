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
  element (0, 1) is read out at the window's last frame (ternary output: two comparisons at the
  levels of +-delta, written into an analog plane as +1, 0, -1). (The four-element layout
  [x | h ; x | h] needs the partial sums moved 64 PEs by analog neighbour transfers, 64 noisy
  operations; sharing the element moves the bits instead, which is exact and free of noise.)

The other cells follow the same rule, one gate per element of the top row, all gates in one
convolution of [x, h]; each gate's comparator bit is moved into element (0, 0) by digital shifts,
where the state update runs on bits:
    SRNN      (0, 0): h' = [w*x + u*h >= 0]
    ConvGRU   (0, 0): z, (0, 1): r; then n = [w_n*x + u_n*(r . h) >= 0] in (0, 0), h' = z ? n : h
    MGU       (0, 0): f; then n = [w_n*x + u_n*(f . h) >= 0], h' = f ? n : h
    ConvLSTM  (0, 0..3): i, f, o, g; the memory c is an analog register in units of u:
              c := -c where f = -1, then c += u where i = g and -= u where they differ;
              h' = XNOR(o, [c >= 0])
  r . h is the plane h gated by r: the convolution shifts the gate with the plane and counts a
  tap only where it is set. A ternary kernel's 0 taps count nowhere. Both run the convolution
  one plane at a time, each adding or subtracting u (2 writes per tap and plane).
The cameras have no CNN: the raw camera reads the sampled frame out every frame; the difference
camera keeps the last frame in an analog register (0 at the window's start) and reads out
ternary(x_t - x_(t-1), delta), compared at +-delta in sensor units, every frame.

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

from pixelrnn_tf.tables import ChannelLevels, in_pixel_tables
from sensor import instructions as I
from sensor.errors import CompileError
from sensor.levels import NEVER, checked_channel_levels, checked_count_level, checked_frame_level, checked_ternary_levels, count_level
from sensor.machine import Scamp5
from sensor.program import Program

SUPPORTED = ("pixelrnn", "convlstm", "convgru", "mgu", "srnn", "cnn", "raw", "diff")
CAMERAS = ("raw", "diff")
# Elements of the recurrent step: gate g of a cell runs in element (0, g), all gates at once; a
# gate that sees another gate's result (GRU's and MGU's candidate) runs afterwards in (0, 0).
GATE_ELEMENTS = {
    "pixelrnn": (("w_f", "u_f"), ("w_o", "u_o")),
    "srnn": (("w_h", "u_h"),),
    "convlstm": (("w_i", "u_i"), ("w_f", "u_f"), ("w_o", "u_o"), ("w_g", "u_g")),
    "convgru": (("w_z", "u_z"), ("w_r", "u_r")),
    "mgu": (("w_f", "u_f"),),
}
CANDIDATE = {"convgru": ("w_n", "u_n"), "mgu": ("w_n", "u_n")}
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
    """A kernel of +-1 (binary) or of -1, 0, +1 (ternary: a 0 tap adds nothing)."""
    array = np.asarray(array, np.float32)
    if not np.all(np.isin(array, (-1.0, 0.0, 1.0))):
        raise CompileError(
            f"{name} must hold only +-1 (a binary kernel) or -1, 0, +1 (ternary), got values {np.unique(array)[:5]}; "
            "k-bit and real kernels do not run on the array's add/subtract."
        )
    return array


def _check_tables(tables):
    """The kernels of `tables` (InPixelTables) checked for what this compiler maps."""
    if not tables.binary:
        raise CompileError("Only binary models run on the sensor; this one is full precision.")
    if tables.arch not in SUPPORTED:
        raise CompileError(f"The compiler maps the archs {', '.join(SUPPORTED)}; this model is {tables.arch!r}.")
    if tables.rnn_input_pool != 1:
        raise CompileError(
            f"Pooling the CNN's output before the cell (rnn_input_pool={tables.rnn_input_pool}) is not mapped to the "
            "sensor yet; pool the readout instead (readout_pool), as the PixelRNN authors' code does."
        )
    kernels = [_check_binary(f"cnn_kernels[{l}]", k) for l, k in enumerate(tables.cnn_kernels)]
    if tables.arch in CAMERAS:
        return kernels, {}
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
    arch = tables.arch
    if kernels:
        layout = _Layout(config, int(math.isqrt(kernels[0].shape[-1])), int(tables.pool_size), kernels[0].shape[0])
    else:  # a camera's frame fills one element of a grid of frame-sized elements
        frame = tables.frame_shape[0] if tables.frame_shape else config.height // 4
        grid = config.height // frame
        layout = _Layout(config, grid, grid, tables.kernel_size)
    if recurrent_white is None:
        recurrent_white = default_recurrent_white(layout.kernel, config)
    levels = {
        "input": checked_frame_level("input_threshold", tables.input_threshold or 0.0, input_scale, config),
        "cnn": [_cnn_level(l, t, input_white, config) for l, t in enumerate(tables.cnn_thresholds)],
        "recurrent": None,
    }
    if arch in GATE_ELEMENTS:
        levels["recurrent"] = checked_count_level(
            "forget_threshold" if arch == "pixelrnn" else "gate threshold (0)",
            tables.forget_threshold or 0.0, recurrent_white, config, option="--recurrent-white",
        )
    if arch == "convlstm" and tables.window * recurrent_white > config.analog_max:
        fits = int(config.analog_max // tables.window)
        raise CompileError(
            f"The ConvLSTM memory c counts up to K = {tables.window} units of {recurrent_white:g}, beyond "
            f"{config.name}'s analog range (+-{config.analog_max:g}); use --recurrent-white {fits} or less"
            + ("." if fits >= 1 else ", or a shorter window.")
        )
    if arch == "pixelrnn" and tables.output_threshold is not None:
        levels["output"] = checked_ternary_levels("output_threshold", tables.output_threshold, recurrent_white, config)
    if arch == "diff":
        levels["diff"] = checked_frame_level("diff_threshold", tables.diff_threshold or 0.0, input_scale, config)
    b = _Builder(config, layout, _calibration(drift, config))
    if arch in CAMERAS:
        sections = {
            "reset": _reset(b, arch),
            "frame": _camera_frame(b, arch, levels, input_scale, int(tables.readout_pool)),
            "readout": (),  # every frame was read out
        }
    else:
        sections = {
            "reset": _reset(b, arch),
            "frame": _frame(b, arch, kernels, cell, levels, input_white, recurrent_white, input_scale),
            "readout": _readout(b, arch, recurrent_white, int(tables.readout_pool), levels.get("output")),
        }
    info = {
        "arch": arch,
        "cnn_layers": len(kernels),
        "ternary": any(bool(np.any(k == 0)) for k in list(kernels) + list(cell.values())),
        "input_white": float(input_white),
        "recurrent_white": float(recurrent_white),
        "input_scale": float(input_scale),
        "levels": levels,
        "frame": layout.size // layout.pool if layout.pool == 4 else None,
        "calibrated_for_drift": b.calibration is not None,
    }
    linear_output = arch == "pixelrnn" and tables.output_threshold is None
    unit = float(recurrent_white) if linear_output else (float(input_scale) if arch == "raw" else 1.0)
    return Program(sections, int(tables.window), unit, info)


def _cnn_level(layer, theta, white, config):
    """The comparator level of a CNN layer: one level (a scalar threshold after the ReLU), or with
    BatchNorm folded (ChannelLevels) one per channel (sensor.levels.checked_channel_levels)."""
    if isinstance(theta, ChannelLevels):
        return checked_channel_levels(f"theta_{layer + 1}", theta, white, config)
    return checked_count_level(f"theta_{layer + 1}", theta, white, config, relu=True)


def _calibration(drift, config):
    if drift is None:
        return None
    from sensor.noise import resolve_noise

    model = resolve_noise(drift, config.noise)
    return _Calibration(model, config) if model.drift_offset or model.drift_gain else None


def _reset(b, arch):
    """h := +1 at the start of every window (the LSTM's memory c := 0, the difference camera's
    previous frame := 0)."""
    b.stage = "reset"
    if arch in GATE_ELEMENTS:
        b.emit(I.dset("h"))
    if arch == "convlstm":
        b.load("cell", 0.0)
    if arch == "diff":
        b.load("prev", 0.0)
    return b.take()


def _gate_elements(arch):
    return [(0, g) for g in range(len(GATE_ELEMENTS[arch]))] if arch in GATE_ELEMENTS else [(0, 0)]


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
        if isinstance(level, list):  # BatchNorm folded: a bias matrix of one level per channel
            b.threshold_channels("g", {layout.element_of_channel(k): l for k, l in enumerate(level)})
        else:
            b.threshold("g", level)
        b.pool_or("g")
        b.compact("g")
        last = layer == len(kernels) - 1
        b.replicate("g", "x", _gate_elements(arch) if last else layout.all_elements)
    if arch in GATE_ELEMENTS:
        b.stage = "rnn"
        _recurrent_step(b, arch, cell, levels["recurrent"], recurrent_white)
    return b.take()


def _recurrent_step(b, arch, cell, level, white):
    """One step of the cell on x and h (both in every gate element). Gate g's pre-activation
    w_g * x + u_g * h accumulates in element (0, g), all gates at once; the comparator turns it
    into a bit, and the bits are moved into element (0, 0), where the state update runs on bits
    (and, for the LSTM, on its analog memory c). h is then copied back into every gate element."""
    elements = _gate_elements(arch)
    per_element = {(0, g): [cell[w], cell[u]] for g, (w, u) in enumerate(GATE_ELEMENTS[arch])}
    b.conv(["x", "h"], per_element, white, elements)
    b.threshold("gb", level)
    hn = "hn"
    if arch == "pixelrnn":  # f in (0, 0) flips h; o stays as the analog acc of (0, 1)
        b.xnor("hn", "gb", "h", "t")
    elif arch == "srnn":
        hn = "gb"
    elif arch in CANDIDATE:  # GRU: z, r; MGU: f = z = r. n = sign(w_n * x + u_n * (r . h)), h' = z ? n : h
        b.emit(I.dmov("zb", "gb"))
        if arch == "convgru":
            b.replicate("gb", "rb", [(0, 0)], source=(0, 1))
        else:
            b.emit(I.dmov("rb", "gb"))
        w, u = CANDIDATE[arch]
        b.conv(["x", "h"], {(0, 0): [cell[w], cell[u]]}, white, [(0, 0)], masks=(None, "rb"))
        b.threshold("n", level)
        b.select("hn", "zb", "n", "h", "t")
    else:  # ConvLSTM: c' = f . c + i . g (analog, in units of `white`), h' = o . sign(c')
        b.emit(I.dmov("i", "gb"))
        for name, source in (("f", (0, 1)), ("o", (0, 2)), ("g", (0, 3))):
            b.replicate("gb", name, [(0, 0)], source=source)
        b.emit(I.dnot("FLAG", "f"))
        b.emit(I.neg("cell", "cell"))
        if b.calibration:  # every pixel takes the same two writes per frame, then their offset is removed
            b.load("z", 0.0)
            b.emit(I.dmov("FLAG", "f"))
            b.emit(I.add("cell", "cell", "z"))
        b.emit(I.all_())
        b.xnor("ig", "i", "g", "t")
        b.load("one", white)
        b.emit(I.dmov("FLAG", "ig"))
        b.emit(I.add("cell", "cell", "one"))
        b.emit(I.dnot("FLAG", "ig"))
        b.emit(I.sub("cell", "cell", "one"))
        b.emit(I.all_())
        if b.calibration:
            b.load("one", b.calibration.memory_correction())
            b.emit(I.add("cell", "cell", "one"))
        # sign(c) = [c >= 0] on whole counts: compared half a count below 0, the midpoint
        b.threshold_register("sc", "cell", count_level(0.0, white))
        b.xnor("hn", "o", "sc", "t")
    b.replicate(hn, "h", elements, source=(0, 0))


def _readout(b, arch, recurrent_white, pool, output_levels=None):
    """What leaves the chip at the window's last frame, in model units."""
    b.stage = "readout"
    e = b.layout.element
    if arch == "pixelrnn" and output_levels is not None:  # o = ternary(acc / u, delta): +1, 0, -1
        b.threshold("op", output_levels[0])
        b.threshold("ge", output_levels[1])
        b.emit(I.dnot("on", "ge"))
        b.ternary_plane("o", "op", "on")
        b.emit(I.readout("o", (0, e, e, e), 1.0, 0.0, pool))
    elif arch == "pixelrnn":
        # o = acc / u; calibrated, acc carries the known drift offset of the accumulation
        offset = -b.accumulated_offset() / recurrent_white if b.calibration else 0.0
        b.emit(I.readout("acc", (0, e, e, e), 1.0 / recurrent_white, offset, pool))
    else:
        b.emit(I.readout("h" if arch in GATE_ELEMENTS else "x", (0, 0, e, e), 2.0, -1.0, pool))
    return b.take()


def _camera_frame(b, arch, levels, input_scale, pool):
    """The raw camera reads every frame out as sampled; the difference camera reads out
    ternary(x_t - x_(t-1), delta) every frame and keeps the frame for the next one."""
    e = b.layout.element
    b.stage = "input"
    b.emit(I.input_("pix", input_scale))
    if arch == "raw":
        b.stage = "readout"
        b.emit(I.readout("pix", (0, 0, e, e), 1.0 / input_scale, 0.0, pool))
        return b.take()
    b.stage = "diff"
    b.emit(I.sub("d", "pix", "prev"))
    level = levels["diff"]
    # +1 where d > level, i.e. where level - d >= 0 fails; -1 where d + level >= 0 fails
    b.load("ct", level)
    b.emit(I.sub("tmp", "ct", "d"))
    b.emit(I.where("tmp"))
    b.emit(I.dnot("dp", "FLAG"))
    b.emit(I.all_())
    b.emit(I.add("tmp", "d", "ct"))
    b.emit(I.where("tmp"))
    b.emit(I.dnot("dn", "FLAG"))
    b.emit(I.all_())
    b.emit(I.mov("prev", "pix"))
    b.stage = "readout"
    b.ternary_plane("o", "dp", "dn")
    b.emit(I.readout("o", (0, 0, e, e), 1.0, 0.0, pool))
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

    def memory_correction(self):
        """k such that a third write c := c + k cancels the offset of the LSTM memory's two writes
        per frame (neg or +0, then +-1) and its own: v3 = G (G (G v + O) + O + k) + O has no
        constant term for k = -(G^2 O + G O + O) / G."""
        gain, offset = self.affine("add")
        return -(gain * gain * offset + gain * offset + offset) / gain

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
        self.acc_writes = layout.taps  # writes of the last convolution to every accumulator

    def accumulated_offset(self):
        return self.calibration.offset(self.acc_writes) if self.calibration else 0.0

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

    def select(self, dst, s, a, b, tmp):
        """dst := a where s, b elsewhere."""
        self.emit(I.dand(tmp, s, a))
        self.emit(I.dnot(dst, s))
        self.emit(I.dand(dst, dst, b))
        self.emit(I.dor(dst, dst, tmp))

    def ternary_plane(self, dst, pos, neg):
        """The analog plane dst := +1 where pos, -1 where neg, 0 elsewhere (pos and neg disjoint)."""
        self.load(dst, 0.0)
        self.emit(I.dmov("FLAG", pos))
        self.load(dst, 1.0)
        self.emit(I.dmov("FLAG", neg))
        self.load(dst, -1.0)
        self.emit(I.all_())

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
    def conv(self, planes, kernels, white, active, masks=None):
        """acc := white * sum over planes p and taps of (+1 if p bit == w_p bit else -1), with one
        kernel per plane per element (`kernels[(i, j)] = [k_plane0, k_plane1]`); the planes are kept.
        A 0 weight (ternary kernel) adds nothing; masks[p] names a bit plane that gates plane p
        (GRU's r . h: h counts only where r is set)."""
        masks = tuple(masks or (None,) * len(planes))
        ternary = any(np.any(kernels[el][n] == 0) for el in active for n in range(len(planes)))
        if ternary or any(masks):
            return self._conv_by_plane(planes, kernels, white, active, masks)
        self.acc_writes = self.layout.taps
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
                    self._row_constant(white * len(planes), row * k, k, k * k, partial)
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

    def _row_constant(self, value, first, count, writes, partial):
        """c := value / the mean emphasis of writes first .. first + count - 1 (see _Calibration)."""
        if partial:
            self.emit(I.dmov("FLAG", "ca"))
        emphasis = np.mean([self.calibration.emphasis(first + j, writes) for j in range(count)])
        self.load("c", value / emphasis)
        if partial:
            self.emit(I.all_())

    def _shift(self, dst, src, dy, dx):
        """dst := src read (dy, dx) pixels away, in one or two shifts from src (never walked)."""
        if not dy and not dx:
            self.emit(I.dmov(dst, src))
        if dy:
            self.emit(I.dshift(dst, src, "south" if dy > 0 else "north", abs(dy)))
        if dx:
            self.emit(I.dshift(dst, dst if dy else src, "east" if dx > 0 else "west", abs(dx)))

    def _conv_by_plane(self, planes, kernels, white, active, masks):
        """conv() one plane at a time, each adding or subtracting `white` where its product is +-1
        and nothing where it is 0 (a 0 weight, or a masked pixel): 2 writes per tap and plane
        where the binary path adds both planes' agreement in one, but it holds the registers of
        one plane at a time."""
        k, half = self.layout.kernel, self.layout.kernel // 2
        calibration = self.calibration
        partial = len(active) < self.layout.grid**2
        writes = k * k * len(planes)
        self.acc_writes = writes
        if calibration:
            self.load("z", 0.0)
            if partial:
                self.elements("ca", active)
        else:
            self.emit(I.in_("c", white))
        self.load("acc", 0.0)
        for row in range(k):
            if calibration:
                self._row_constant(white, row * k * len(planes), k * len(planes), writes, partial)
            for col in range(k):
                dy, dx = row - half, col - half
                self.validity("v", dy, dx, active)
                for n, (plane, mask) in enumerate(zip(planes, masks)):
                    ones = [el for el in active if kernels[el][n][row, col] > 0]
                    nonzero = [el for el in active if kernels[el][n][row, col] != 0]
                    if not nonzero and not calibration:
                        continue
                    self._shift("s", plane, dy, dx)
                    self.elements("w", ones)
                    self.xnor("ag", "s", "w", "t")
                    self.emit(I.dmov("m", "v"))  # where this plane's product is +-1
                    if len(nonzero) < len(active):
                        self.elements("wz", nonzero)
                        self.emit(I.dand("m", "m", "wz"))
                    if mask:
                        self._shift("sm", mask, dy, dx)
                        self.emit(I.dand("m", "m", "sm"))
                    self.emit(I.dand("pos", "ag", "m"))
                    self.emit(I.dnot("neg", "ag"))
                    self.emit(I.dand("neg", "neg", "m"))
                    self.emit(I.dmov("FLAG", "pos"))
                    self.emit(I.add("acc", "acc", "c"))
                    self.emit(I.dmov("FLAG", "neg"))
                    self.emit(I.sub("acc", "acc", "c"))
                    if calibration:  # every pixel of the active elements takes one write per tap and plane
                        self.emit(I.dnor("rest", "pos", "neg"))
                        if partial:
                            self.emit(I.dand("rest", "rest", "ca"))
                        self.emit(I.dmov("FLAG", "rest"))
                        self.emit(I.add("acc", "acc", "z"))
                    self.emit(I.all_())

    def threshold_register(self, dst, register, level):
        """dst := [register >= level], the comparator's drift taken into account when calibrated."""
        if self.calibration:
            level = self.calibration.comparator_load(level)
        self.emit(I.in_("ct", level))
        self.emit(I.sub("tmp", register, "ct"))
        self.emit(I.where("tmp"))
        self.emit(I.dmov(dst, "FLAG"))
        self.emit(I.all_())

    def threshold_channels(self, dst, levels):
        """dst := [acc >= the level of its element]: the levels form a bias matrix, loaded once
        per distinct level under a FLAG of its elements, then one subtraction compares every
        pixel. levels: {element: level, None (set) or NEVER (clear)}."""
        compared = {}
        for element, level in levels.items():
            if level is not None and level is not NEVER:
                compared.setdefault(level, []).append(element)
        for level, elements in sorted(compared.items()):
            if self.calibration:
                level = self.calibration.comparator_load(level + self.calibration.offset(self.acc_writes))
            self.elements("pe", elements)
            self.emit(I.dmov("FLAG", "pe"))
            self.emit(I.in_("ct", level))
        self.emit(I.all_())
        if compared:
            self.emit(I.sub("tmp", "acc", "ct"))
            self.emit(I.where("tmp"))
            self.emit(I.dmov(dst, "FLAG"))
            self.emit(I.all_())
        else:
            self.emit(I.dclr(dst))
        always = [e for e, level in levels.items() if level is None]
        never = [e for e, level in levels.items() if level is NEVER]
        if always:
            self.elements("pe", always)
            self.emit(I.dor(dst, dst, "pe"))
        if never:
            self.elements("pe", never)
            self.emit(I.dnot("pe", "pe"))
            self.emit(I.dand(dst, dst, "pe"))

    def threshold(self, dst, level):
        """dst := [acc >= level] (sensor.levels); level None (a threshold a ReLU always passes): all ones."""
        if level is None:
            self.emit(I.dset(dst))
            return
        # calibrated, acc carries the known offset of the convolution's writes
        self.threshold_register(dst, "acc", level + self.accumulated_offset())

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
