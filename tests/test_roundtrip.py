"""Across the house: the levels a chip loads from an export are the levels the compiled program
compares at, a model exported to sensor tables runs on the emulator from those files alone and
reads out what the Keras model reads out."""

import json
import math
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


def test_a_batchnorm_model_exports_a_level_per_channel_and_runs_from_its_files(tmp_path):
    """BatchNorm folded into the export: 16 levels per layer in weights.json, weights.npz and
    weights.h (slot order), the flipped channels named; the exported files compiled alone read
    out what the Keras model does."""
    tf.keras.utils.set_random_seed(4)
    rng = np.random.default_rng(4)
    model = pixelrnn_tf.build_model(arch="pixelrnn", cnn_layers=2, frames=4, window=2, cnn_batchnorm=True)
    encoder = model.get_layer("in_pixel_cnn")
    for norm, threshold in zip(encoder.batchnorm_layers, encoder.thresholds):
        norm.gamma.assign(rng.choice([-1, 1], 16) * rng.uniform(0.3, 1.5, 16))
        norm.beta.assign(rng.uniform(-1, 1, 16))
        norm.moving_mean.assign(rng.uniform(-4, 4, 16))
        norm.moving_variance.assign(rng.uniform(4, 30, 16))
        threshold.assign(rng.uniform(-0.5, 2.0, 16))
    export.export_model(model, tmp_path / "out", splits=("sensor",), input_white=5)
    folder = tmp_path / "out" / "sensor"
    written = json.loads((folder / "weights.json").read_text())["cnn_layers"][0]["channel_levels"]
    signs, first = pixelrnn_tf.encoders.fold_batchnorm(encoder, 0)
    assert written["flipped_channels"] == [k for k in range(16) if signs[k] < 0] != []
    finite = [k for k in range(16) if np.isfinite(first[k])]
    assert [written["sensor"][k] for k in finite] == [math.ceil(5 * (first[k] - 0.5)) for k in finite]
    header = (folder / "weights.h").read_text()
    slot_levels = [written["sensor"][c] for c in export.cnn_slot_channels()]
    assert f"pixelrnn_cnn1_levels[16] = {{{', '.join(map(str, slot_levels))}}};" in header
    with np.load(folder / "weights.npz") as arrays:
        np.testing.assert_array_equal(arrays["cnn1_channel_levels_sensor"], written["sensor"])
    program = sensor.compile_tables(export.load_in_pixel_tables(folder), input_white=5)
    clips = rng.standard_normal((2, 4, 64, 64, 1)).astype("float32")
    result = sensor.Emulator(program, jit=False).run(clips)
    np.testing.assert_array_equal(result.readouts, pixelrnn_tf.sensor_model(model)(clips).numpy())


@pytest.mark.parametrize("arch, options", [("pixelrnn", {"output_threshold": 1.5}), ("diff", {"diff_threshold": 0.35})])
def test_ternary_output_and_difference_levels_are_exported_as_the_program_compares(arch, options, tmp_path):
    """PixelRNN's ternary output compares o > 1.5 (o >= 2: level ceil(2 (2 - 1/2)) = 3) and
    o >= -1.5 (o >= -1: level -3); the difference camera compares the frame at 16 x 0.35."""
    model = pixelrnn_tf.build_model(arch=arch, frames=4, window=2, **options)
    export.export_model(model, tmp_path / "out", splits=("sensor",), input_white=5)
    written = json.loads((tmp_path / "out" / "sensor" / "weights.json").read_text())["recurrent_thresholds"]
    program = sensor.compile(model, input_white=5)
    if arch == "pixelrnn":
        assert (written["output"]["sensor"], written["output_negative"]["sensor"]) == program.info["levels"]["output"] == (3, -3)
    else:
        assert written["difference"]["sensor"] == program.info["levels"]["diff"] == pytest.approx(16 * 0.35)
    exported = sensor.compile_tables(export.load_in_pixel_tables(tmp_path / "out" / "sensor"), input_white=5)
    assert str(exported) == str(program)


def test_a_ternary_model_exports_its_zero_taps_and_runs_from_its_files(tmp_path):
    tf.keras.utils.set_random_seed(5)
    model = pixelrnn_tf.build_model(arch="srnn", frames=4, window=2, kernel_quantizer="ste_ternary")
    for variable in model.trainable_variables:  # latent weights across the dead zone
        if "kernel" in variable.name and variable.shape.rank == 4:
            variable.assign(np.random.default_rng(5).uniform(-1, 1, variable.shape))
    export.export_model(model, tmp_path / "out", splits=("sensor",), input_white=5)
    tables = export.load_in_pixel_tables(tmp_path / "out" / "sensor")
    assert 0.3 < np.mean(tables.cnn_kernels[0] == 0) < 0.7
    program = sensor.compile_tables(tables, input_white=5)
    assert str(program) == str(sensor.compile(model, input_white=5))
