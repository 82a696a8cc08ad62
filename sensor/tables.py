"""Load the sensor weight tables that `pixelrnn-export --split sensor` writes (format
'pixelrnn-sensor-tables/1': DIR/sensor/weights.json and weights.npz) into the tables that
`sensor.compile_tables` compiles, so an exported model runs on the emulator without Keras.

Only the documented file format is read: the emulator knows nothing of the exporter's code.
"""

import json
from pathlib import Path

import numpy as np

from sensor.compiler import CompileError

FORMAT = "pixelrnn-sensor-tables/1"


def load_tables(folder):
    """Compiler tables from an exported sensor folder (the one holding weights.json)."""
    folder = Path(folder)
    path = folder / "weights.json"
    if not path.is_file():
        raise CompileError(f"No sensor tables at {folder}: expected weights.json written by `pixelrnn-export --split sensor`.")
    exported = json.loads(path.read_text())
    if exported.get("format") != FORMAT:
        raise CompileError(f"{path} has format {exported.get('format')!r}; this emulator reads {FORMAT!r}.")
    if exported["tiling"]["grid"] ** 2 != len(exported["cnn_layers"][0]["kernels"]):
        raise CompileError(f"{path}: the tiling grid does not match the number of CNN channels.")

    def threshold(entry):
        return None if entry is None else float(entry["model"])

    recurrent = exported.get("recurrent_thresholds", {})
    return {
        "arch": exported["arch"],
        # exported CNN kernels are (channel, row, column); the compiler takes (row, column, 1, channel)
        "cnn_kernels": [np.transpose(np.asarray(layer["kernels"], np.float32), (1, 2, 0))[:, :, None, :] for layer in exported["cnn_layers"]],
        "cnn_thresholds": [threshold(layer["threshold"]) for layer in exported["cnn_layers"]],
        "input_threshold": threshold(exported.get("input_threshold")),
        "pool_size": int(exported["tiling"]["grid"]),  # filters = pool_size**2 tile back into one frame
        "tiling": "column_major",
        "cell_kernels": {name: np.asarray(k, np.float32)[:, :, None, None] for name, k in exported["recurrent_kernels"].items()},
        "forget_threshold": threshold(recurrent.get("forget")),
        "window": int(exported["window"]),
        "readout_pool": int(exported["readout"]["pool_size"]),
    }
