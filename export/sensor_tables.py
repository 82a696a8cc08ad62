"""The in-pixel half of a trained model as data a SCAMP-5 sensor program loads.

`sensor_tables(model)` turns the model's in-pixel numbers (`pixelrnn_tf.in_pixel_tables`) into the
sensor's: +-1 kernels in load and slot order, and every threshold as the level the sensor compares
at; `write_sensor_tables` writes them as weights.json, weights.npz and weights.h;
`read_sensor_tables` loads the first two back, and `load_in_pixel_tables` turns an export back into
the tables `sensor.compile_tables` compiles, so an exported model runs on the emulator from its
files alone.

Units and levels. The model counts in units of one binary input (a 5x5 +-1 kernel on +-1 inputs
gives an integer in [-25, 25]); on the sensor a count of the CNN is `input_white` analog units and
a count of the recurrent sums `recurrent_white`. Each threshold becomes the level of
`sensor.levels`, the same function the compiler's programs compare with, so the table a chip loads
and the emulated program decide alike. A level must lie inside the array's analog range.

Load order (the PixelRNN authors' SCAMP-5 program, So et al. 2024). A 5x5 kernel W is 25 integers
from the bottom kernel row up, left to right: entry n = W[4 - n div 5, n mod 5]. The 16 CNN kernels
are loaded into slots s = 0..15 of the 4x4 macropixel, slot s at grid row s div 4, column s mod 4;
slot s = 4a + b holds channel 4b + a, which puts channel k at PE (row k mod 4, column k div 4): the
same place `pixelrnn_tf.encoders.tile_channels` puts its feature map. The recurrent kernels sit in
a 16-slot table too: PixelRNN's w_f, u_f, w_o, u_o in slots 5, 6, 9, 10, zeros elsewhere.
"""

import json
import re
from pathlib import Path

import numpy as np

from pixelrnn_tf.tables import ChannelLevels, InPixelTables, in_pixel_tables
from sensor import INPUT_SCALE, CompileError, Scamp5, default_recurrent_white
from sensor.levels import NEVER, checked_channel_levels, checked_count_level, checked_frame_level, checked_ternary_levels

from export.errors import ExportError

FORMAT = "pixelrnn-sensor-tables/2"
# /1 wrote round(theta * input_white) as the sensor threshold; its model-unit values read alike.
READABLE_FORMATS = ("pixelrnn-sensor-tables/1", FORMAT)
# Gate pairs (w_g, u_g) fill these slots in order: PixelRNN's f and o take the authors' 5, 6, 9,
# 10; cells with more gates (ConvGRU 3, ConvLSTM 4) continue in the outer slots.
RECURRENT_SLOT_ORDER = (5, 6, 9, 10, 1, 2, 13, 14, 4, 7, 8, 11)
# The recurrent comparison each compiled cell makes, by the name its threshold has in the table.
RECURRENT_COMPARISON = {"pixelrnn": "forget", "srnn": "hidden", "convlstm": "gate", "convgru": "gate", "mgu": "gate"}


def load_order(kernel):
    """A (5, 5) kernel as the sensor loads it: bottom row first, each row left to right."""
    kernel = np.asarray(kernel)
    return kernel[::-1, :].reshape(-1)


def from_load_order(values, size=5):
    """Inverse of load_order."""
    return np.asarray(values).reshape(size, size)[::-1, :]


def cnn_slot_channels(grid=4):
    """Channel held by each slot s = 0..grid^2-1: slot s = grid*a + b holds channel grid*b + a."""
    return tuple(grid * (s % grid) + s // grid for s in range(grid * grid))


def _binary_kernel(value, what):
    """+-1 (binary) or -1, 0, +1 (ternary: a 0 tap adds nothing on the sensor) as int8."""
    value = np.asarray(value, dtype=np.float64)
    if not np.all(np.isin(value, (-1.0, 0.0, 1.0))):
        raise ExportError(
            f"{what} has non-binary weights (values other than +-1, or -1, 0, +1 for ternary); sensor tables "
            "need a model built with binary=True."
        )
    return value.astype(np.int8)


class _Levels:
    """Thresholds as {"model": theta, "sensor": level}, levels from sensor.levels; a level that
    does not fit the array is an ExportError naming the fix."""

    def __init__(self, array, input_white, recurrent_white, input_scale):
        self.array, self.input_white, self.recurrent_white, self.input_scale = array, input_white, recurrent_white, input_scale

    def _checked(self, compute, *args, **kwargs):
        try:
            return compute(*args, **kwargs)
        except CompileError as error:
            raise ExportError(str(error)) from None

    def cnn(self, name, theta):
        level = self._checked(checked_count_level, name, theta, self.input_white, self.array, relu=True)
        # None: theta <= 0 passes every count after the ReLU; the range's lowest value is a level
        # every register value reaches, so a program that always compares still decides right.
        return {"model": float(theta), "sensor": int(self.array.analog_min) if level is None else level}

    def channels(self, name, levels):
        """A BatchNorm-folded layer: per channel the first passing count ("always", "never") and
        its level; a channel that always passes compares at the range's lowest value, one that
        never does one above its highest, so every channel is one comparison with its level."""
        compared = self._checked(checked_channel_levels, name, levels, self.input_white, self.array)
        model = [("always" if f < 0 else "never") if np.isinf(f) else float(f) for f in levels]
        edges = {None: int(self.array.analog_min), NEVER: int(self.array.analog_max) + 1}
        sensor = [edges[level] if level is None or level is NEVER else level for level in compared]
        flipped = [k for k, sign in enumerate(levels.signs) if sign < 0]
        return {"model": model, "sensor": sensor, "flipped_channels": flipped,
                "rule": "channel k passes where input_white * c >= sensor[k], c its flipped kernel's count (no ReLU)"}

    def ternary(self, name, delta):
        return self._checked(checked_ternary_levels, name, delta, self.recurrent_white, self.array, option="--recurrent-white")

    def recurrent(self, name, theta):
        level = self._checked(
            checked_count_level, name, theta, self.recurrent_white, self.array, option="--recurrent-white"
        )
        return {"model": float(theta), "sensor": level}

    def frame(self, name, theta):
        return {"model": float(theta), "sensor": self._checked(checked_frame_level, name, theta, self.input_scale, self.array)}


def sensor_tables(model, input_white=10, recurrent_white=None, array=None, input_scale=INPUT_SCALE):
    """Everything the sensor program needs from `model` (a Keras model or its InPixelTables), as a
    dict of numbers and numpy arrays. recurrent_white defaults to the compiler's (the largest that
    never saturates a recurrent sum); array defaults to sensor.Scamp5().

    Raises ExportError for a non-binary model or a level outside the array's range."""
    tables = model if isinstance(model, InPixelTables) else in_pixel_tables(model)
    array = array or Scamp5()
    if not input_white or input_white < 1:
        raise ExportError(f"input_white must be at least 1 sensor unit per count, got {input_white}.")
    if not tables.binary:
        raise ExportError(
            f"Model {tables.model_name!r} has non-binary in-pixel weights (a full-precision {tables.arch}); "
            "sensor tables need a model built with binary=True. Export only --split decoder."
        )
    if tables.rnn_input_pool != 1:
        raise ExportError(
            f"Model {tables.model_name!r} pools the CNN's output before the cell (rnn_input_pool="
            f"{tables.rnn_input_pool}), which the sensor program does not do yet; train with readout_pool instead."
        )
    if recurrent_white is None:
        recurrent_white = default_recurrent_white(tables.kernel_size, array)
    levels = _Levels(array, float(input_white), float(recurrent_white), float(input_scale))
    result = {
        "format": FORMAT,
        "model": tables.model_name,
        "arch": tables.arch,
        "array": array.name,
        "input_white": float(input_white),
        "recurrent_white": float(recurrent_white),
        "input_scale": float(input_scale),
        "window": int(tables.window),
        "sensor_range": [int(array.analog_min), int(array.analog_max)],
        "load_order": "entry n = W[4 - n div 5, n mod 5] (bottom kernel row first, left to right)",
        "levels": "sensor.levels: counts pass at ceil(white * (ceil(theta) - 1/2)); the frame at input_scale * theta",
        "cnn_layers": [],
        "input_threshold": None,
        "tiling": None,
        "recurrent_kernels": {},
        "recurrent_slots": {},
        "recurrent_thresholds": {},
        "noise": _noise(tables, float(input_white), float(recurrent_white)),
        "readout": {"pool_size": int(tables.readout_pool), "shape": list(tables.readout_shape)},
    }
    _cnn_entries(result, tables, levels)
    _recurrent_entries(result, tables, levels)
    return result


def _noise(tables, input_white, recurrent_white):
    units = {"cnn_noise_stddev": input_white, "gate_noise_stddev": recurrent_white, "readout_noise_stddev": recurrent_white}
    noise = {key: {"model": float(value), "sensor": float(value) * units[key]} for key, value in sorted(tables.noise.items())}
    noise["at_inference"] = bool(tables.noise_at_inference)
    return noise


def _cnn_entries(result, tables, levels):
    if not tables.cnn_kernels:
        return
    grid = tables.grid
    result["tiling"] = {
        "grid": grid,
        "rule": f"channel k at tile row k mod {grid}, tile column k div {grid}",
        "slot_channels": list(cnn_slot_channels(grid)),
    }
    for layer, (kernel, theta) in enumerate(zip(tables.cnn_kernels, tables.cnn_thresholds)):
        kernel = _binary_kernel(kernel, f"CNN layer {layer + 1}")
        if kernel.shape[2] != 1:
            raise ExportError(f"CNN layer {layer + 1} has {kernel.shape[2]} input channels; the sensor program takes 1.")
        entry = {"kernels": np.transpose(kernel[:, :, 0, :], (2, 0, 1))}  # (channel, row, column)
        if isinstance(theta, ChannelLevels):  # BatchNorm folded: a level per channel (a bias matrix)
            entry["channel_levels"] = levels.channels(f"theta_{layer + 1}", theta)
        else:
            entry["threshold"] = levels.cnn(f"theta_{layer + 1}", theta)
        result["cnn_layers"].append(entry)
    if tables.input_threshold is not None:
        result["input_threshold"] = levels.frame("input_threshold", tables.input_threshold)


def _recurrent_entries(result, tables, levels):
    names = list(tables.cell_kernels)
    if len(names) > len(RECURRENT_SLOT_ORDER):
        raise ExportError(f"The {tables.arch} cell has {len(names)} kernels; the 16-slot table holds {len(RECURRENT_SLOT_ORDER)}.")
    for name, slot in zip(names, RECURRENT_SLOT_ORDER):
        result["recurrent_kernels"][name] = _binary_kernel(tables.cell_kernels[name], f"Recurrent kernel {name}")
        result["recurrent_slots"][name] = slot
    thresholds = result["recurrent_thresholds"]
    comparison = RECURRENT_COMPARISON.get(tables.arch)
    if comparison:
        thresholds[comparison] = levels.recurrent(f"{comparison}_threshold", tables.forget_threshold or 0.0)
    # The levels sensor.compiler compares at: the ternary output o > delta and o >= -delta on
    # whole counts of the recurrent white; the difference camera's delta on the sampled frame.
    if tables.output_threshold is not None:
        delta = float(tables.output_threshold)
        positive, negative = levels.ternary("output_threshold", delta)
        thresholds["output"] = {"model": delta, "sensor": positive}
        thresholds["output_negative"] = {"model": -delta, "sensor": negative}
    if tables.diff_threshold is not None:
        thresholds["difference"] = levels.frame("diff_threshold", tables.diff_threshold)


def cnn_slot_table(kernels):
    """(16, 5, 5) kernels in channel order -> (16, 25) in slot order and load order."""
    grid = int(round(np.sqrt(len(kernels))))
    return np.stack([load_order(kernels[channel]) for channel in cnn_slot_channels(grid)])


def recurrent_slot_table(tables):
    """The 16-slot recurrent table (16, 25), load order, zeros in unused slots."""
    table = np.zeros((16, 25), dtype=np.int8)
    for name, slot in tables["recurrent_slots"].items():
        table[slot] = load_order(tables["recurrent_kernels"][name])
    return table


# Writers and reader --------------------------------------------------------------------------


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def dumps(value):
    """Indented JSON with every list of plain numbers on one line (kernel rows, example tensors)."""
    text = json.dumps(_jsonable(value), indent=1)
    return re.sub(r"\[[-0-9.eE+,\s]*\]", lambda m: json.dumps(json.loads(m.group(0))), text) + "\n"


def _npz_arrays(tables):
    arrays = {
        "input_white": np.float64(tables["input_white"]),
        "recurrent_white": np.float64(tables["recurrent_white"]),
        "input_scale": np.float64(tables["input_scale"]),
        "window": np.int64(tables["window"]),
    }

    def threshold(key, entry):
        arrays[key] = np.float64(entry["model"])
        if entry["sensor"] is not None:
            arrays[f"{key}_sensor"] = np.float64(entry["sensor"])

    for index, layer in enumerate(tables["cnn_layers"], start=1):
        arrays[f"cnn{index}_kernels"] = layer["kernels"]
        if "channel_levels" in layer:
            arrays[f"cnn{index}_channel_levels_sensor"] = np.asarray(layer["channel_levels"]["sensor"], np.float64)
        else:
            threshold(f"cnn{index}_threshold", layer["threshold"])
        arrays[f"cnn{index}_slot_table"] = cnn_slot_table(layer["kernels"])
    if tables["input_threshold"] is not None:
        threshold("input_threshold", tables["input_threshold"])
    for name, kernel in tables["recurrent_kernels"].items():
        arrays[f"rnn_{name}"] = kernel
    if tables["recurrent_kernels"]:
        arrays["rnn_slot_table"] = recurrent_slot_table(tables)
    for name, entry in tables["recurrent_thresholds"].items():
        threshold(f"rnn_{name}_threshold", entry)
    return arrays


def _c_block(rows, indent="    "):
    lines = []
    for slot, row in enumerate(rows):
        lines.append(f"{indent}{{{', '.join(str(int(v)) for v in row)}}},  /* slot {slot} */")
    return "\n".join(lines)


def _c_number(value):
    return f"{value:g}" if isinstance(value, float) and not float(value).is_integer() else str(int(value))


def weights_header(tables):
    """weights.h: the tables as C arrays in the SCAMP-5 load order, levels in sensor units."""
    guard = "PIXELRNN_SENSOR_WEIGHTS_H_"
    lines = [
        f"/* Sensor weight tables of {tables['model']} ({tables['arch']}), written by pixelrnn-export.",
        " * Each kernel: 25 values, bottom kernel row first, left to right (entry n = W[4 - n/5][n%5]).",
        " * CNN tables in slot order: slot s = 4a + b holds channel 4b + a (slot s at grid row s/4,",
        " * column s%4). Thresholds are comparator levels in sensor units: a count c passes theta",
        " * exactly when white * c >= level, level = ceil(white * (ceil(theta) - 1/2)) (sensor.levels),",
        " * white = INPUT_WHITE for the CNN and RECURRENT_WHITE for the recurrent sums. */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stdint.h>",
        "",
        f"#define PIXELRNN_INPUT_WHITE {tables['input_white']:g}",
        f"#define PIXELRNN_RECURRENT_WHITE {tables['recurrent_white']:g}",
        f"#define PIXELRNN_INPUT_SCALE {tables['input_scale']:g}",
        f"#define PIXELRNN_WINDOW {tables['window']}",
        f"#define PIXELRNN_CNN_LAYERS {len(tables['cnn_layers'])}",
    ]
    if tables["input_threshold"] is not None:
        lines.append(f"#define PIXELRNN_INPUT_THRESHOLD {_c_number(tables['input_threshold']['sensor'])}  /* INPUT_SCALE * theta */")
    for index, layer in enumerate(tables["cnn_layers"], start=1):
        if "channel_levels" in layer:  # slot order, like the kernels
            channels = cnn_slot_channels(int(round(np.sqrt(len(layer["kernels"])))))
            levels = ", ".join(str(layer["channel_levels"]["sensor"][c]) for c in channels)
            threshold = [
                "",
                f"/* CNN layer {index}: BatchNorm folded, one level per slot (a bias matrix); kernels of channels "
                f"{layer['channel_levels']['flipped_channels']} flipped */",
                f"static const int16_t pixelrnn_cnn{index}_levels[16] = {{{levels}}};",
            ]
        else:
            threshold = [
                "",
                f"/* CNN layer {index}: theta = {layer['threshold']['model']:.9g} (model units) */",
                f"#define PIXELRNN_CNN{index}_THRESHOLD {layer['threshold']['sensor']}",
            ]
        lines += threshold + [
            f"static const int8_t pixelrnn_cnn{index}_kernels[16][25] = {{",
            _c_block(cnn_slot_table(layer["kernels"])),
            "};",
        ]
    if tables["recurrent_kernels"]:
        where = ", ".join(f"{name} in slot {slot}" for name, slot in tables["recurrent_slots"].items())
        lines += [
            "",
            f"/* Recurrent kernels ({tables['arch']}): {where}; other slots zero. */",
            "static const int8_t pixelrnn_rnn_kernels[16][25] = {",
            _c_block(recurrent_slot_table(tables)),
            "};",
        ]
        for name, slot in tables["recurrent_slots"].items():
            lines.append(f"#define PIXELRNN_RNN_SLOT_{name.upper()} {slot}")
    for name, entry in tables["recurrent_thresholds"].items():
        if entry["sensor"] is None:
            lines.append(f"/* {name} threshold {entry['model']:.9g} (model units): not compiled for the sensor yet */")
        else:
            lines.append(f"#define PIXELRNN_RNN_{name.upper()}_THRESHOLD {entry['sensor']}  /* {entry['model']:.9g} */")
    lines += ["", f"#endif  /* {guard} */", ""]
    return "\n".join(lines)


def write_sensor_tables(tables, folder):
    """Write weights.json, weights.npz and weights.h into `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "weights.json", folder / "weights.npz", folder / "weights.h"]
    paths[0].write_text(dumps(tables))
    with open(paths[1], "wb") as handle:
        np.savez(handle, **_npz_arrays(tables))
    paths[2].write_text(weights_header(tables))
    return paths


def read_sensor_tables(folder):
    """The tables written by write_sensor_tables, with kernels as int8 numpy arrays again; the
    arrays of weights.npz are checked against weights.json."""
    folder = Path(folder)
    path = folder / "weights.json"
    if not path.is_file():
        raise ExportError(f"No sensor tables at {folder}: expected weights.json written by `pixelrnn export --split sensor`.")
    tables = json.loads(path.read_text())
    if tables.get("format") not in READABLE_FORMATS:
        raise ExportError(f"{path} has format {tables.get('format')!r}; this version reads {', '.join(READABLE_FORMATS)}.")
    for layer in tables["cnn_layers"]:
        layer["kernels"] = np.asarray(layer["kernels"], dtype=np.int8)
    tables["recurrent_kernels"] = {k: np.asarray(v, dtype=np.int8) for k, v in tables["recurrent_kernels"].items()}
    with np.load(folder / "weights.npz") as arrays:
        for index, layer in enumerate(tables["cnn_layers"], start=1):
            if not np.array_equal(arrays[f"cnn{index}_kernels"], layer["kernels"]):
                raise ExportError(f"{folder}: weights.npz and weights.json disagree on CNN layer {index}.")
        for name, kernel in tables["recurrent_kernels"].items():
            if not np.array_equal(arrays[f"rnn_{name}"], kernel):
                raise ExportError(f"{folder}: weights.npz and weights.json disagree on {name}.")
    return tables


def _cnn_threshold(layer):
    if "channel_levels" not in layer:
        return float(layer["threshold"]["model"])
    entry = layer["channel_levels"]
    first = [{"always": -np.inf, "never": np.inf}.get(v, v) for v in entry["model"]]
    signs = [-1.0 if k in entry["flipped_channels"] else 1.0 for k in range(len(first))]
    return ChannelLevels(first, signs)


def load_in_pixel_tables(folder):
    """The pixelrnn_tf.InPixelTables of an exported sensor folder (the one holding weights.json), so
    that `sensor.compile_tables` runs an exported model without Keras."""
    tables = read_sensor_tables(folder)
    if tables["cnn_layers"] and tables["tiling"]["grid"] ** 2 != len(tables["cnn_layers"][0]["kernels"]):
        raise ExportError(f"{folder}: the tiling grid does not match the number of CNN channels.")

    def model_value(entry):
        return None if entry is None else float(entry["model"])

    thresholds = tables["recurrent_thresholds"]
    noise = {k: float(v["model"]) for k, v in tables.get("noise", {}).items() if isinstance(v, dict)}
    return InPixelTables(
        arch=tables["arch"],
        binary=True,
        window=int(tables["window"]),
        # exported CNN kernels are (channel, row, column); the tables hold (row, column, 1, channel)
        cnn_kernels=tuple(np.transpose(l["kernels"], (1, 2, 0))[:, :, None, :].astype(np.float32) for l in tables["cnn_layers"]),
        cnn_thresholds=tuple(_cnn_threshold(l) for l in tables["cnn_layers"]),
        input_threshold=model_value(tables.get("input_threshold")),
        pool_size=int(tables["tiling"]["grid"]) if tables["tiling"] else 4,
        cell_kernels={name: k.astype(np.float32) for name, k in tables["recurrent_kernels"].items()},
        forget_threshold=model_value(thresholds.get("forget")),
        output_threshold=model_value(thresholds.get("output")),
        diff_threshold=model_value(thresholds.get("difference")),
        readout_pool=int(tables["readout"]["pool_size"]),
        readout_shape=tuple(tables["readout"]["shape"]),
        noise=noise,
        noise_at_inference=bool(tables.get("noise", {}).get("at_inference", False)),
        model_name=tables["model"],
    )
