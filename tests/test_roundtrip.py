"""Across the house: the levels a chip loads from an export are the levels the compiled program
compares at, a model exported to sensor tables runs on the emulator from those files alone and
reads out what the Keras model reads out."""

import re

import numpy as np
import pytest

import export
import pixelrnn_tf
import sensor
from pixelrnn_tf._keras import tf


def _model(cnn_layers, seed, thetas=None):
    tf.keras.utils.set_random_seed(seed)
    model = pixelrnn_tf.build_model(
        arch="pixelrnn", cnn_layers=cnn_layers, frames=4, window=2, forget_threshold=True, learned_input_threshold=True
    )
    rng = np.random.default_rng(seed)
    encoder = model.get_layer("in_pixel_cnn")
    for layer, threshold in enumerate(encoder.thresholds):
        threshold.assign(thetas[layer] if thetas else rng.uniform(0.2, 3.0))
    encoder.input_threshold.assign(rng.uniform(-0.3, 0.3))
    model.get_layer("recurrence").cell.theta.assign(rng.uniform(-3, 3))
    return model


def _compared_levels(program, stage):
    """The constants a stage loads into the comparator register and subtracts before `where`,
    read from the program's instructions; "always" where the stage sets its bits instead."""
    steps = [instruction for name, instruction in program.sections["frame"] if name == stage]
    levels = [s.args[0] for s in steps if s.op == "in" and s.dst == "ct"]
    if not levels and any(s.op == "dset" and s.dst in ("g", "f") for s in steps):
        return "always"
    assert [s for s in steps if s.op == "sub" and s.srcs[1:] == ("ct",)], f"{stage} compares at no level"
    (level,) = levels
    return level


def _header_defines(path):
    return {name: float(value) for name, value in re.findall(r"#define (\w+) (-?[\d.]+)", path.read_text())}


THETAS = {  # (theta_1, theta_2) of a 2-layer CNN: 2.04 passes c >= 3, which round(20.4) = 20 would not
    "just_above_an_integer": (2.04, 1.0),
    "negative": (-0.3, 0.49),
    "random": None,
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(THETAS))
def test_exported_levels_are_the_levels_the_program_compares_at(case, tmp_path):
    model = _model(2, seed=7, thetas=THETAS[case])
    export.export_model(model, tmp_path / "out", splits=("sensor",), input_white=10)
    tables = export.read_sensor_tables(tmp_path / "out" / "sensor")
    defines = _header_defines(tmp_path / "out" / "sensor" / "weights.h")
    program = sensor.compile(model, input_white=10)
    array = sensor.Scamp5()
    for layer, entry in enumerate(tables["cnn_layers"], start=1):
        compared = _compared_levels(program, f"cnn{layer}")
        # a theta <= 0 passes every count after the ReLU: the program sets the bits, the table
        # holds the lowest level of the range, which every register value reaches
        expected = array.analog_min if compared == "always" else compared
        assert entry["threshold"]["sensor"] == expected == defines[f"PIXELRNN_CNN{layer}_THRESHOLD"]
        theta = entry["threshold"]["model"]
        # the sensor compares each (saturated) sum, then ORs the block; the model max-pools the
        # ReLU of the sums, then thresholds: per sum they must decide alike
        counts = np.arange(-25, 26)
        np.testing.assert_array_equal(np.clip(10 * counts, -128, 127) >= expected, np.maximum(counts, 0) >= theta)
    forget = tables["recurrent_thresholds"]["forget"]
    assert forget["sensor"] == _compared_levels(program, "rnn") == defines["PIXELRNN_RNN_FORGET_THRESHOLD"]
    assert tables["input_threshold"]["sensor"] == pytest.approx(_compared_levels(program, "input"))
    if case == "just_above_an_integer":
        assert tables["cnn_layers"][0]["threshold"]["sensor"] == 25  # 10 * 3 - 5: c = 2 fails, c = 3 passes
    clips = np.random.default_rng(3).standard_normal((2, 4, 64, 64, 1)).astype("float32")
    result = sensor.Emulator(program, jit=False).run(clips)
    np.testing.assert_array_equal(result.readouts, pixelrnn_tf.sensor_model(model)(clips).numpy())


@pytest.mark.slow
@pytest.mark.parametrize("cnn_layers", [1, 2])
def test_exported_tables_run_on_the_emulator_like_the_model(cnn_layers, tmp_path):
    model = _model(cnn_layers, seed=cnn_layers)
    export.export_model(model, tmp_path / "out", splits=("sensor",), input_white=10)
    tables = export.load_in_pixel_tables(tmp_path / "out" / "sensor")
    program = sensor.compile_tables(tables, input_white=5)  # 5: no CNN sum saturates
    clips = np.random.default_rng(3).standard_normal((2, 4, 64, 64, 1)).astype("float32")
    result = sensor.Emulator(program, jit=False).run(clips)
    assert result.saturated == 0
    np.testing.assert_array_equal(result.readouts, pixelrnn_tf.sensor_model(model)(clips).numpy())


def test_load_in_pixel_tables_names_a_missing_folder(tmp_path):
    with pytest.raises(export.ExportError, match="expected weights.json written by `pixelrnn export --split sensor`"):
        export.load_in_pixel_tables(tmp_path)
