"""The in-pixel half of a trained model as data a SCAMP-5 sensor program loads.

`sensor_tables(model, input_white)` reads the binary kernels and thresholds out of a model;
`write_sensor_tables` writes them as weights.json, weights.npz and weights.h; `read_sensor_tables`
loads the first two back (what the emulator and the tests read).

Units. The model counts in units of one binary input (a 5x5 +-1 kernel on +-1 inputs gives an
integer in [-25, 25]); the sensor's analog registers hold signed 8-bit values in which a binary
input is `input_white`. A threshold theta becomes round(theta * input_white), which must lie in
[-128, 127].

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

from pixelrnn_tf.cells import CELLS
from pixelrnn_tf.models import ENCODER_LAYER, READOUT_LAYER, RECURRENCE_LAYER

from export.errors import ExportError

SENSOR_MIN, SENSOR_MAX = -128, 127  # SCAMP-5 analog registers: signed 8-bit
FORMAT = "pixelrnn-sensor-tables/1"
# Gate pairs (w_g, u_g) fill these slots in order: PixelRNN's f and o take the authors' 5, 6, 9,
# 10; cells with more gates (ConvGRU 3, ConvLSTM 4) continue in the outer slots.
RECURRENT_SLOT_ORDER = (5, 6, 9, 10, 1, 2, 13, 14, 4, 7, 8, 11)


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


def recurrent_kernel_names(cell):
    """The cell's kernels in slot order: w and u of each gate in turn (w_f, u_f, w_o, u_o)."""
    names = []
    for w, u in zip(cell.input_kernels, cell.hidden_kernels):
        names += [w, u]
    return tuple(names)


def arch_name(cell):
    """The architecture name of a cell (pixelrnn, convlstm, ...), as ModelConfig spells it."""
    for name, cls in CELLS.items():
        if type(cell) is cls:
            return name
    raise ExportError(f"Unknown recurrent cell {type(cell).__name__}: the exporter knows {', '.join(CELLS)}.")


def _binary_kernel(value, what):
    value = np.asarray(value, dtype=np.float64)
    if not np.all(np.abs(value) == 1.0):
        raise ExportError(
            f"{what} has non-binary weights (values other than +-1); sensor tables need a model built "
            "with binary=True."
        )
    return value.astype(np.int8)


def to_sensor_units(name, theta, input_white):
    """round(theta * input_white), checked against the sensor's signed 8-bit range."""
    value = int(np.round(float(theta) * float(input_white)))
    if not SENSOR_MIN <= value <= SENSOR_MAX:
        fits = int(np.floor(SENSOR_MAX / abs(float(theta))))
        raise ExportError(
            f"Threshold {name} = {float(theta):.6g} is {value} in sensor units at input_white "
            f"{input_white}, outside the sensor's signed 8-bit range [{SENSOR_MIN}, {SENSOR_MAX}]; "
            f"use --input-white {fits} or less."
        )
    return value


def _threshold(name, theta, input_white):
    return {"model": float(theta), "sensor": to_sensor_units(name, theta, input_white)}


def sensor_tables(model, input_white=10):
    """Everything the sensor program needs from `model`, as a dict of numbers and numpy arrays.

    Raises ExportError for a non-binary model or a threshold outside the sensor's range."""
    if not input_white or input_white <= 0:
        raise ExportError(f"input_white must be a positive number of sensor units, got {input_white}.")
    layer_names = [layer.name for layer in model.layers]
    recurrence = model.get_layer(RECURRENCE_LAYER)
    readout = model.get_layer(READOUT_LAYER)
    cell = recurrence.cell
    if not cell.binary:
        raise ExportError(
            f"Model {model.name!r} has non-binary in-pixel weights (a full-precision {type(cell).__name__}); "
            "sensor tables need a model built with binary=True. Export only --split decoder."
        )
    tables = {
        "format": FORMAT,
        "model": model.name,
        "arch": arch_name(cell),
        "input_white": float(input_white),
        "window": int(recurrence.window),
        "sensor_range": [SENSOR_MIN, SENSOR_MAX],
        "load_order": "entry n = W[4 - n div 5, n mod 5] (bottom kernel row first, left to right)",
        "cnn_layers": [],
        "input_threshold": None,
        "tiling": None,
        "recurrent_kernels": {},
        "recurrent_slots": {},
        "recurrent_thresholds": {},
        "noise": {},
        "readout": {"pool_size": int(readout.pool_size), "shape": [int(d) for d in readout.output.shape[2:]]},
    }
    noise = {"gate_noise_stddev": cell.gate_noise_stddev, "readout_noise_stddev": readout.noise_stddev}
    if ENCODER_LAYER in layer_names:
        cnn = model.get_layer(ENCODER_LAYER)
        if not cnn.binary:
            raise ExportError(
                f"Model {model.name!r} has a full-precision in-pixel CNN (non-binary weights); sensor "
                "tables need a model built with binary=True. Export only --split decoder."
            )
        grid = cnn.grid
        tables["tiling"] = {
            "grid": grid,
            "rule": f"channel k at tile row k mod {grid}, tile column k div {grid}",
            "slot_channels": list(cnn_slot_channels(grid)),
        }
        for layer in range(cnn.num_layers):
            kernel = _binary_kernel(cnn.binary_kernel(layer).numpy(), f"CNN layer {layer + 1}")
            if kernel.shape[2] != 1:
                raise ExportError(f"CNN layer {layer + 1} has {kernel.shape[2]} input channels; the sensor program takes 1.")
            tables["cnn_layers"].append(
                {
                    "kernels": np.transpose(kernel[:, :, 0, :], (2, 0, 1)),  # (channel, row, column)
                    "threshold": _threshold(f"theta_{layer + 1}", cnn.thresholds[layer].numpy(), input_white),
                }
            )
        if cnn.input_threshold is not None:
            tables["input_threshold"] = _threshold("input_threshold", cnn.input_threshold.numpy(), input_white)
        noise["cnn_noise_stddev"] = cnn.noise_stddev
    names = recurrent_kernel_names(cell)
    if len(names) > len(RECURRENT_SLOT_ORDER):
        raise ExportError(f"{type(cell).__name__} has {len(names)} kernels; the 16-slot table holds {len(RECURRENT_SLOT_ORDER)}.")
    for name, slot in zip(names, RECURRENT_SLOT_ORDER):
        kernel = _binary_kernel(cell.kernel(name).numpy(), f"Recurrent kernel {name}")
        if kernel.shape[2] != 1:
            raise ExportError(f"Recurrent kernel {name} has {kernel.shape[2]} input channels; the sensor program takes 1.")
        tables["recurrent_kernels"][name] = kernel[:, :, 0, 0]
        tables["recurrent_slots"][name] = slot
    if getattr(cell, "theta", None) is not None:
        tables["recurrent_thresholds"]["forget"] = _threshold("forget_threshold", cell.theta.numpy(), input_white)
    if getattr(cell, "output_threshold", None) is not None:
        tables["recurrent_thresholds"]["output"] = _threshold("output_threshold", cell.output_threshold, input_white)
    if tables["arch"] == "diff":
        tables["recurrent_thresholds"]["difference"] = _threshold("diff_threshold", cell.threshold, input_white)
    tables["noise"] = {
        key: {"model": float(value), "sensor": float(value) * float(input_white)} for key, value in sorted(noise.items())
    }
    tables["noise"]["at_inference"] = bool(cell.noise_at_inference)
    return tables


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
    arrays = {"input_white": np.float64(tables["input_white"]), "window": np.int64(tables["window"])}
    for index, layer in enumerate(tables["cnn_layers"], start=1):
        arrays[f"cnn{index}_kernels"] = layer["kernels"]
        arrays[f"cnn{index}_threshold"] = np.float64(layer["threshold"]["model"])
        arrays[f"cnn{index}_threshold_sensor"] = np.int64(layer["threshold"]["sensor"])
        arrays[f"cnn{index}_slot_table"] = cnn_slot_table(layer["kernels"])
    if tables["input_threshold"] is not None:
        arrays["input_threshold"] = np.float64(tables["input_threshold"]["model"])
        arrays["input_threshold_sensor"] = np.int64(tables["input_threshold"]["sensor"])
    for name, kernel in tables["recurrent_kernels"].items():
        arrays[f"rnn_{name}"] = kernel
    if tables["recurrent_kernels"]:
        arrays["rnn_slot_table"] = recurrent_slot_table(tables)
    for name, threshold in tables["recurrent_thresholds"].items():
        arrays[f"rnn_{name}_threshold"] = np.float64(threshold["model"])
        arrays[f"rnn_{name}_threshold_sensor"] = np.int64(threshold["sensor"])
    return arrays


def _c_block(rows, indent="    "):
    lines = []
    for slot, row in enumerate(rows):
        lines.append(f"{indent}{{{', '.join(str(int(v)) for v in row)}}},  /* slot {slot} */")
    return "\n".join(lines)


def weights_header(tables):
    """weights.h: the tables as C arrays in the SCAMP-5 load order."""
    guard = "PIXELRNN_SENSOR_WEIGHTS_H_"
    lines = [
        f"/* Sensor weight tables of {tables['model']} ({tables['arch']}), written by pixelrnn-export.",
        " * Each kernel: 25 values, bottom kernel row first, left to right (entry n = W[4 - n/5][n%5]).",
        " * CNN tables in slot order: slot s = 4a + b holds channel 4b + a (slot s at grid row s/4,",
        " * column s%4). Thresholds in sensor units: round(theta * input_white). */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stdint.h>",
        "",
        f"#define PIXELRNN_INPUT_WHITE {tables['input_white']:g}",
        f"#define PIXELRNN_WINDOW {tables['window']}",
        f"#define PIXELRNN_CNN_LAYERS {len(tables['cnn_layers'])}",
    ]
    if tables["input_threshold"] is not None:
        lines.append(f"#define PIXELRNN_INPUT_THRESHOLD {tables['input_threshold']['sensor']}")
    for index, layer in enumerate(tables["cnn_layers"], start=1):
        lines += [
            "",
            f"/* CNN layer {index}: theta = {layer['threshold']['model']:.9g} (model units) */",
            f"#define PIXELRNN_CNN{index}_THRESHOLD {layer['threshold']['sensor']}",
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
    for name, threshold in tables["recurrent_thresholds"].items():
        lines.append(f"#define PIXELRNN_RNN_{name.upper()}_THRESHOLD {threshold['sensor']}  /* {threshold['model']:.9g} */")
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
    tables = json.loads((folder / "weights.json").read_text())
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
