"""The sensor half of `export/`: weight tables, load order, comparator levels, bad input.

Oracles: the load-order formula written out entry by entry, the model's own tiling function, a
numpy re-implementation of the sensor's forward pass driven only by the exported slot tables,
the defining property of a level (it passes exactly the counts the model passes), and the
PixelRNN authors' table for their released model."""

import json
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import np_sign, xcorr_same

import export
import pixelrnn_tf
from pixelrnn_tf._keras import tf
from pixelrnn_tf.encoders import tile_channels

REFERENCE = Path(os.environ.get("PIXELRNN_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference"))


def _model(**overrides):
    tf.keras.utils.set_random_seed(overrides.pop("seed", 0))
    return pixelrnn_tf.build_model(**{"num_classes": 9, **overrides})


def _set_thresholds(model, cnn=(3.3, 1.7), forget=0.4):
    layer = model.get_layer("in_pixel_cnn")
    for variable, value in zip(layer.thresholds, cnn):
        variable.assign(value)
    cell = model.get_layer("recurrence").cell
    if getattr(cell, "theta", None) is not None:
        cell.theta.assign(forget)


def _entry(kernel, n):
    """The load-order formula of the authors' README, one entry at a time."""
    return kernel[4 - n // 5, n % 5]


# Load order and slot order ------------------------------------------------------------------


def test_load_order_is_the_authors_formula(rng):
    kernel = rng.integers(-9, 10, (5, 5))
    order = export.load_order(kernel)
    assert order.tolist() == [_entry(kernel, n) for n in range(25)]
    np.testing.assert_array_equal(export.from_load_order(order), kernel)


def test_slot_s_holds_the_channel_the_tiling_puts_at_its_grid_position():
    # One-hot feature maps of 1x1 pixel: after tiling, channel k sits at (k mod 4, k div 4).
    maps = np.eye(16, dtype=np.float32).reshape(16, 1, 1, 16) * np.arange(1, 17, dtype=np.float32)[:, None, None, None]
    grid = np.stack([tile_channels(tf.constant(maps[k : k + 1]), 4).numpy()[0, :, :, 0] for k in range(16)]).sum(0)
    for slot, channel in enumerate(export.cnn_slot_channels()):
        assert grid[slot // 4, slot % 4] == channel + 1  # slot s is loaded at grid row s div 4, column s mod 4
        assert channel == 4 * (slot % 4) + slot // 4  # slot s = 4a + b holds channel 4b + a


# Tables against the model -------------------------------------------------------------------

VARIANTS = {
    "pixelrnn_cnn1": dict(arch="pixelrnn", cnn_layers=1),
    "pixelrnn_cnn2_theta": dict(arch="pixelrnn", cnn_layers=2, forget_threshold=True, learned_input_threshold=True),
    "convlstm": dict(arch="convlstm"),
    "mgu_noise": dict(arch="mgu", cnn_noise_stddev=0.1, gate_noise_stddev=0.2, readout_noise_stddev=0.3),
    "cnn": dict(arch="cnn"),
}


def _parse_header(text):
    """{array name: (rows, 25) int array} and {define: int} from weights.h."""
    arrays = {}
    for name, body in re.findall(r"int8_t (\w+)\[16\]\[25\] = \{(.*?)\n\};", text, re.S):
        arrays[name] = np.array([[int(v) for v in row.split(",")] for row in re.findall(r"\{([-\d, ]+)\}", body)])
    defines = {name: float(value) for name, value in re.findall(r"#define (\w+) (-?[\d.]+)", text)}
    return arrays, defines


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tables_and_header_hold_the_models_kernels(variant, tmp_path):
    model = _model(**VARIANTS[variant])
    _set_thresholds(model)
    result = export.export_model(model, tmp_path / "out", "sensor", input_white=10)
    tables = export.read_sensor_tables(tmp_path / "out" / "sensor")
    arrays, defines = _parse_header((tmp_path / "out" / "sensor" / "weights.h").read_text())
    cnn = model.get_layer("in_pixel_cnn")
    for layer in range(cnn.num_layers):
        kernel = cnn.binary_kernel(layer).numpy()[:, :, 0, :]  # (5, 5, channel)
        np.testing.assert_array_equal(tables["cnn_layers"][layer]["kernels"], np.moveaxis(kernel, -1, 0))
        expected = [[_entry(kernel[:, :, 4 * (s % 4) + s // 4], n) for n in range(25)] for s in range(16)]
        np.testing.assert_array_equal(arrays[f"pixelrnn_cnn{layer + 1}_kernels"], expected)
        theta = float(cnn.thresholds[layer].numpy())
        level = tables["cnn_layers"][layer]["threshold"]["sensor"]
        assert tables["cnn_layers"][layer]["threshold"]["model"] == pytest.approx(theta)
        assert defines[f"PIXELRNN_CNN{layer + 1}_THRESHOLD"] == level
        counts = np.arange(-25, 26)  # a level passes exactly the counts that pass theta
        np.testing.assert_array_equal(10 * counts >= level, counts >= theta)
        assert level == {3.3: 35, 1.7: 15}[round(theta, 1)]  # 10 * ceil(theta) - 5
    cell = model.get_layer("recurrence").cell
    names = [n for pair in zip(cell.input_kernels, cell.hidden_kernels) for n in pair]
    if names:
        slots = dict(zip(names, (5, 6, 9, 10, 1, 2, 13, 14)))
        expected = np.zeros((16, 25))
        for name, slot in slots.items():
            expected[slot] = [_entry(cell.kernel(name).numpy()[:, :, 0, 0], n) for n in range(25)]
        np.testing.assert_array_equal(arrays["pixelrnn_rnn_kernels"], expected)
        assert tables["recurrent_slots"] == slots
    if variant == "pixelrnn_cnn2_theta":
        # forget gate: theta = 0.4 at recurrent_white 2 -> ceil(2 * (1 - 1/2)) = 1: 2 z >= 1 <=> z >= 1
        assert tables["recurrent_white"] == 2
        assert tables["recurrent_thresholds"]["forget"]["sensor"] == 1 == defines["PIXELRNN_RNN_FORGET_THRESHOLD"]
        assert tables["input_threshold"]["sensor"] == 0  # 16 * theta_in, theta_in = 0 untrained
    noise = tables["noise"]
    assert noise["gate_noise_stddev"]["model"] == pytest.approx(cell.gate_noise_stddev)
    assert noise["gate_noise_stddev"]["sensor"] == pytest.approx(2 * cell.gate_noise_stddev)  # recurrent units
    assert noise["cnn_noise_stddev"]["sensor"] == pytest.approx(10 * cnn.noise_stddev)
    assert tables["window"] == 16 and tables["input_white"] == 10
    # The manifest lists every file with its hash.
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest == json.loads(json.dumps(result["manifest"]))
    assert sorted(manifest["files"]) == ["sensor/weights.h", "sensor/weights.json", "sensor/weights.npz"]
    import hashlib

    for name, entry in manifest["files"].items():
        assert hashlib.sha256((tmp_path / "out" / name).read_bytes()).hexdigest() == entry["sha256"]


def _sensor_forward(slot_tables, thresholds, forget_threshold, clip):
    """The sensor's forward pass from the exported slot tables alone: every 16x16 tile at grid
    (s div 4, s mod 4) is computed with the kernel of slot s; the recurrent kernels are read from
    slots 5, 6, 9, 10. clip (T, 64, 64)."""

    def kernel(row):
        return np.array([[row[(4 - r) * 5 + c] for c in range(5)] for r in range(5)], dtype=np.float64)

    rnn = slot_tables["rnn"]
    w_f, u_f, w_o, u_o = (kernel(rnn[s]) for s in (5, 6, 9, 10))
    h = np.ones((64, 64))
    for frame in clip:
        x = np_sign(frame)
        for table, theta in zip(slot_tables["cnn"], thresholds):
            tiled = np.zeros((64, 64))
            for slot in range(16):
                conv = np.maximum(xcorr_same(x, kernel(table[slot])), 0)
                pooled = conv.reshape(16, 4, 16, 4).max(axis=(1, 3))
                r, c = slot // 4, slot % 4
                tiled[16 * r : 16 * r + 16, 16 * c : 16 * c + 16] = np_sign(pooled - theta)
            x = tiled
        f = np_sign(xcorr_same(x, w_f) + xcorr_same(h, u_f) - forget_threshold)
        o = xcorr_same(x, w_o) + xcorr_same(h, u_o)
        h = f * h
    return o


@pytest.mark.parametrize("cnn_layers,forget", [(1, False), (2, True)])
def test_sensor_pass_from_the_tables_gives_the_models_readouts(cnn_layers, forget, tmp_path, rng):
    model = _model(cnn_layers=cnn_layers, forget_threshold=forget)
    _set_thresholds(model)
    export.export_model(model, tmp_path / "out", "sensor")
    with np.load(tmp_path / "out" / "sensor" / "weights.npz") as arrays:
        tables = {"cnn": [arrays[f"cnn{i + 1}_slot_table"] for i in range(cnn_layers)], "rnn": arrays["rnn_slot_table"]}
        thresholds = [float(arrays[f"cnn{i + 1}_threshold"]) for i in range(cnn_layers)]
        theta = float(arrays["rnn_forget_threshold"]) if forget else 0.0
    clip = rng.standard_normal((1, 16, 64, 64, 1)).astype(np.float32)
    expected = pixelrnn_tf.sensor_model(model)(clip, training=False).numpy()[0, 0, :, :, 0]
    np.testing.assert_array_equal(_sensor_forward(tables, thresholds, theta, clip[0, :, :, :, 0]), expected)


# The authors' table ---------------------------------------------------------------------------


def _torch_state_dict(path):
    """The float tensors of a PyTorch zip checkpoint, without torch."""

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return lambda storage, offset, size, stride, *rest: np.lib.stride_tricks.as_strided(
                    storage[offset:], size, [s * storage.itemsize for s in stride]
                ).copy()
            if module == "torch":
                return name
            if (module, name) == ("collections", "OrderedDict"):
                import collections

                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected {module}.{name}")

        def persistent_load(self, pid):
            _, kind, key, _, _ = pid
            dtype = {"FloatStorage": np.float32, "LongStorage": np.int64}[kind]
            return np.frombuffer(archive.read(f"{root}/data/{key}"), dtype=dtype)

    with zipfile.ZipFile(path) as archive:
        root = archive.namelist()[0].split("/")[0]
        with archive.open(f"{root}/data.pkl") as handle:
            return Unpickler(handle).load()


def _authors_blocks(text, name):
    section = text.split(f"{name}:")[1].split(":\n")[0]
    return np.array([[int(v) for v in row.split(",")] for row in re.findall(r"\{([-\d,]+)\}", section)])


@pytest.mark.skipif(not (REFERENCE / "lip_iw10.txt").is_file(), reason=f"reference data not found at {REFERENCE}")
def test_slot_and_load_order_reproduce_the_authors_table():
    weights = _torch_state_dict(REFERENCE / "lips_no_noise.pt")
    text = (REFERENCE / "lip_iw10.txt").read_text()
    conv1 = weights["cnn_model.conv1.weight"][:, 0]  # (channel, row, column)
    np.testing.assert_array_equal(export.cnn_slot_table(conv1), _authors_blocks(text, "cnn_model.conv1.weight"))
    for key, name in [("ConvGates_i", "convgates_i"), ("ConvGates_h", "convgates_h"), ("Conv_out_i", "conv_out_i"), ("Conv_out_h", "conv_out_h")]:
        block = _authors_blocks(text, f"rnn_model.{name}.weight")
        np.testing.assert_array_equal(export.load_order(weights[f"rnn_model.{key}.weight"][0, 0])[None], block)




# Bad input ------------------------------------------------------------------------------------


def _nothing_written(path):
    return not path.exists() and not [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]


def test_full_precision_model_is_an_error_before_writing(tmp_path):
    with pytest.raises(export.ExportError, match="non-binary"):
        export.export_model(_model(binary=False), tmp_path / "out", "sensor")
    assert _nothing_written(tmp_path / "out")


def test_threshold_outside_the_sensor_range_is_an_error_before_writing(tmp_path):
    model = _model()
    _set_thresholds(model, cnn=(14.0,))
    # level 10 * 14 - 5 = 135 > 127; at input_white 9 it is ceil(9 * 13.5) = 122
    with pytest.raises(export.ExportError, match=r"theta_1 = 14 is 135 .* \[-128, 127\]; use --input-white 9 or less"):
        export.export_model(model, tmp_path / "out", "sensor", input_white=10)
    assert _nothing_written(tmp_path / "out")
    result = export.export_model(model, tmp_path / "out", "sensor", input_white=9)
    assert result["sensor"]["cnn_layers"][0]["threshold"]["sensor"] == 122


@pytest.mark.parametrize("splits", ["sensor,camera", "", "decoders"])
def test_unknown_split_is_an_error(splits, tmp_path):
    with pytest.raises(export.ExportError, match="--split takes sensor, decoder"):
        export.export_model(_model(), tmp_path / "out", splits)
    assert _nothing_written(tmp_path / "out")


def test_missing_model_or_run_directory_is_an_error(tmp_path):
    from pixelrnn_cli.workflows import export_run
    from training.runs import RunNotFoundError

    with pytest.raises(export.ExportError, match="No model file at"):
        export.export_model(tmp_path / "no_such_model.keras", tmp_path / "out", "sensor")
    with pytest.raises(export.ExportError, match="No run directory or model file"):
        export_run(tmp_path / "no_such_run", tmp_path / "out", "sensor")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(RunNotFoundError, match="not a finished run directory"):
        export_run(tmp_path / "empty_run", tmp_path / "out", "sensor")
    assert _nothing_written(tmp_path / "out")


def test_out_folder_that_is_not_an_export_is_left_alone(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(export.ExportError, match="not a previous export"):
        export.export_model(_model(), tmp_path / "out", "sensor")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]


def test_a_failed_export_leaves_the_previous_one_whole(tmp_path):
    model = _model()
    export.export_model(model, tmp_path / "out", "sensor")
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    _set_thresholds(model, cnn=(30.0,))
    with pytest.raises(export.ExportError):
        export.export_model(model, tmp_path / "out", "sensor")
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
