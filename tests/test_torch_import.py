"""Importing PyTorch checkpoints without torch: the zip/pickle reader against an independent
writer of torch's format, its refusal of malicious and broken files, and the imported model
against a numpy implementation of the authors' model (no reference data needed)."""

import collections
import json
import os
import pickle
import struct
import subprocess
import zipfile

import numpy as np
import pytest
from conftest import np_sign, xcorr_same

import pixelrnn_tf
from pixelrnn_tf import torch_import
from pixelrnn_tf._keras import tf
from pixelrnn_tf.torch_checkpoint import CheckpointError, UnsafeCheckpointError, read_state_dict

# ---------------------------------------------------------------------------------------------
# An independent writer of torch.save's zip format: the opcodes torch's pickler emits (protocol 2).

STORAGE_NAMES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("float64"): "DoubleStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("int32"): "IntStorage",
    np.dtype("int16"): "ShortStorage",
    np.dtype("int8"): "CharStorage",
    np.dtype("uint8"): "ByteStorage",
    np.dtype("bool"): "BoolStorage",
}


def _str(text):
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(n):
    return b"J" + struct.pack("<i", n)


def _tuple(items):
    return b"(" + b"".join(items) + b"t"


def _global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _tensor_record(key, storage_name, numel, offset, shape, stride):
    pid = _tuple([_str("storage"), _global("torch", storage_name), _str(key), _str("cpu"), _int(numel)]) + b"Q"
    hooks = _global("collections", "OrderedDict") + b")R"
    args = _tuple([pid, _int(offset), _tuple(map(_int, shape)), _tuple(map(_int, stride)), b"\x89", hooks])
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def torch_pickle(entries):
    """entries: (name, record bytes). An OrderedDict of them, as torch pickles a state dict."""
    body = b"".join(_str(name) + record for name, record in entries)
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + body + b"u."


def write_zip(path, pkl, storages, prefix="archive", byteorder=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{prefix}/data.pkl", pkl)
        if byteorder:
            archive.writestr(f"{prefix}/byteorder", byteorder)
        for key, raw in storages.items():
            archive.writestr(f"{prefix}/data/{key}", raw)
        archive.writestr(f"{prefix}/version", "3\n")
    return path


def write_checkpoint(path, tensors, byteorder="little", **kwargs):
    """Write `tensors` (name -> array) as torch.save would: one contiguous storage each."""
    entries, storages = [], {}
    for index, (name, value) in enumerate(tensors.items()):
        value = np.array(value, order="C")
        strides = [s // value.itemsize for s in value.strides]
        key = str(index)
        entries.append((name, _tensor_record(key, STORAGE_NAMES[value.dtype], value.size, 0, value.shape, strides)))
        order = "<" if byteorder == "little" else ">"
        storages[key] = value.astype(value.dtype.newbyteorder(order) if value.itemsize > 1 else value.dtype).tobytes()
    return write_zip(path, torch_pickle(entries), storages, byteorder=byteorder, **kwargs)


def authors_state_dict(rng, classes=4, noise=False):
    """A random state dict with the keys, shapes and dtypes of the authors' checkpoints."""
    f32 = lambda *v: np.array(v, np.float32)  # noqa: E731
    pm1 = lambda *shape: rng.choice([-1.0, 1.0], size=shape).astype(np.float32)  # noqa: E731
    state = collections.OrderedDict(
        [
            ("thresh3", f32(0.12)),
            ("cnn_model.thresh1", f32(6.5)),  # mixes +1 and -1 in q for random input frames
            ("cnn_model.thresh2", f32(0.5)),
            ("cnn_model.conv1.weight", pm1(16, 1, 5, 5)),
            ("rnn_model.ConvGates_i.weight", pm1(1, 1, 5, 5)),
            ("rnn_model.ConvGates_h.weight", pm1(1, 1, 5, 5)),
            ("rnn_model.Conv_out_i.weight", pm1(1, 1, 5, 5)),
            ("rnn_model.Conv_out_h.weight", pm1(1, 1, 5, 5)),
            ("fin_conv.weight", f32(-1.0).reshape(1, 1, 1, 1)),
            ("fin_convpost.0.weight", f32(0.7)),
            ("fin_convpost.0.bias", f32(-0.2)),
            ("fin_convpost.0.running_mean", f32(1.5)),
            ("fin_convpost.0.running_var", f32(40.0)),
            ("fin_convpost.0.num_batches_tracked", np.array(123, np.int64)),
            ("fc.weight", (0.05 * rng.standard_normal((classes, 4096))).astype(np.float32)),
            ("fc.bias", (0.1 * rng.standard_normal(classes)).astype(np.float32)),
        ]
    )
    if noise:
        state["rnn_model.rnn_threshold"] = f32(0.5)
    return state


def authors_forward(state, clips, noise=False):
    """The authors' model as their reference README writes it, in numpy: (readouts, logits)."""
    w1 = state["cnn_model.conv1.weight"][:, 0]
    wf, uf, wo, uo = (
        state[f"rnn_model.{n}.weight"][0, 0] for n in ("ConvGates_i", "ConvGates_h", "Conv_out_i", "Conv_out_h")
    )
    theta1 = state["cnn_model.thresh1"][0]
    yy, xx = np.mgrid[0:64, 0:64]
    channel = 4 * (xx // 16) + yy // 16
    readouts, logits = [], []
    for clip in clips:
        h = np.ones((64, 64))
        for frame in clip:
            b = np_sign(frame)
            c = np.stack([xcorr_same(b, w1[k]) for k in range(16)])
            p = np.maximum(c, 0).reshape(16, 16, 4, 16, 4).max(axis=(2, 4))
            q = np_sign(p - theta1)
            x = q[channel, yy % 16, xx % 16]
            z = xcorr_same(x, wf) + xcorr_same(h, uf)
            f = np_sign(z - state["rnn_model.rnn_threshold"][0]) if noise else np_sign(z + 0.001)
            o = xcorr_same(x, wo) + xcorr_same(h, uo)
            h = np_sign(f * h)
        readouts.append(o)
        s = state["fin_conv.weight"].reshape(())
        bn_out = (s * o - state["fin_convpost.0.running_mean"][0]) / np.sqrt(
            state["fin_convpost.0.running_var"][0] + 1e-5
        ) * state["fin_convpost.0.weight"][0] + state["fin_convpost.0.bias"][0]
        z = np.tanh(bn_out) - state["thresh3"][0]
        logits.append(state["fc.weight"].astype(np.float64) @ z.reshape(-1) + state["fc.bias"])
    return np.stack(readouts), np.stack(logits)


@pytest.fixture
def clips(rng):
    return rng.standard_normal((2, 16, 64, 64)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The reader


def test_reader_round_trips_every_dtype_and_byte_order(tmp_path, rng):
    tensors = collections.OrderedDict(
        [
            ("f32", rng.standard_normal((3, 4)).astype(np.float32)),
            ("f64", rng.standard_normal(5)),
            ("f16", rng.standard_normal((2, 2)).astype(np.float16)),
            ("i64", rng.integers(-(2**40), 2**40, size=3)),
            ("i32", rng.integers(-100, 100, size=(2, 3)).astype(np.int32)),
            ("i16", np.array([-3, 7], np.int16)),
            ("i8", np.array([-128, 5], np.int8)),
            ("u8", np.array([0, 255], np.uint8)),
            ("flag", np.array([True, False])),
            ("scalar", np.array(4560, np.int64)),
        ]
    )
    for byteorder in ("little", "big"):
        loaded = read_state_dict(write_checkpoint(tmp_path / f"{byteorder}.pt", tensors, byteorder=byteorder))
        assert list(loaded) == list(tensors)
        for name, value in tensors.items():
            assert loaded[name].dtype == value.dtype.newbyteorder("=") and loaded[name].shape == value.shape
            np.testing.assert_array_equal(loaded[name], value, err_msg=f"{name} ({byteorder})")


def test_reader_follows_offsets_and_strides_into_shared_storages(tmp_path):
    base = np.arange(12, dtype=np.float32)  # one storage, two views of it (as after a transpose)
    entries = [
        ("transposed", _tensor_record("0", "FloatStorage", 12, 0, (4, 3), (1, 4))),
        ("row", _tensor_record("0", "FloatStorage", 12, 4, (4,), (1,))),
    ]
    loaded = read_state_dict(write_zip(tmp_path / "views.pt", torch_pickle(entries), {"0": base.tobytes()}, prefix="m"))
    np.testing.assert_array_equal(loaded["transposed"], base.reshape(3, 4).T)
    np.testing.assert_array_equal(loaded["row"], base[4:8])


def test_reader_unwraps_a_training_checkpoint(tmp_path):
    record = _tensor_record("0", "FloatStorage", 2, 0, (2,), (1,))
    pkl = b"\x80\x02}(" + _str("epoch") + _int(3) + _str("state_dict") + torch_pickle([("w", record)])[2:-1] + b"u."
    loaded = read_state_dict(write_zip(tmp_path / "wrapped.pt", pkl, {"0": np.float32([1, 2]).tobytes()}))
    np.testing.assert_array_equal(loaded["w"], [1, 2])


# ---------------------------------------------------------------------------------------------
# Security: a checkpoint is untrusted input


class _Reduce:
    """Pickles as a call of `func(*args)`: what a malicious checkpoint carries."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _malicious_pickles(marker):
    touch = f"open({str(marker)!r}, 'w').close()"
    yield "os.system", pickle.dumps(_Reduce(os.system, f"touch {marker}"), protocol=2), "system"
    yield "builtins.eval", pickle.dumps(_Reduce(eval, touch), protocol=2), "eval"
    yield "subprocess (protocol 4, STACK_GLOBAL)", pickle.dumps(
        _Reduce(subprocess.call, ["touch", str(marker)]), protocol=4
    ), "subprocess"
    yield "inside a state dict", pickle.dumps(
        collections.OrderedDict(weight=_Reduce(os.system, f"touch {marker}")), protocol=2
    ), "system"
    whole_model = b"\x80\x02" + _global("torch.nn.modules.conv", "Conv2d") + b")R."
    yield "a pickled module", whole_model, "torch.nn.modules.conv.Conv2d"
    evil_storage = torch_pickle([("w", _tensor_record("0", "FloatStorage", 1, 0, (1,), (1,)))]).replace(
        _global("torch", "FloatStorage"), _global("posix", "system")
    )
    yield "a storage type", evil_storage, "posix.system"
    yield "copyreg", pickle.dumps(collections.Counter(a=1), protocol=2).replace(
        _global("collections", "Counter"), _global("copyreg", "_reconstructor")
    ), "copyreg._reconstructor"


def test_malicious_pickles_are_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    cases = list(_malicious_pickles(marker))
    assert len(cases) == 7
    for label, pkl, named in cases:
        path = write_zip(tmp_path / "evil.pt", pkl, {"0": np.float32([1]).tobytes()})
        with pytest.raises(UnsafeCheckpointError, match="refused") as error:
            read_state_dict(path)
        assert named in str(error.value), label
        assert not marker.exists(), f"{label}: the payload ran"
        with pytest.raises(UnsafeCheckpointError):
            torch_import.load_torch_checkpoint(path)
        assert not marker.exists()


def test_a_tensor_record_on_something_else_than_a_storage_is_an_error(tmp_path):
    pkl = torch_pickle(
        [
            (
                "w",
                _global("torch._utils", "_rebuild_tensor_v2")
                + _tuple([_str("x"), _int(0), _tuple([]), _tuple([])])
                + b"R",
            )
        ]
    )
    with pytest.raises(CheckpointError, match="not a storage"):
        read_state_dict(write_zip(tmp_path / "odd.pt", pkl, {}))


# ---------------------------------------------------------------------------------------------
# Broken files: clear errors


@pytest.fixture
def good_checkpoint(tmp_path, rng):
    return write_checkpoint(tmp_path / "good.pt", authors_state_dict(rng))


def test_truncated_and_corrupt_archives(tmp_path, good_checkpoint):
    raw = good_checkpoint.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_state_dict(truncated)
    # flip one byte inside the fc.weight storage: the zip's CRC catches it
    corrupt = tmp_path / "corrupt.pt"
    data = bytearray(raw)
    data[raw.index(b"archive/data/14") + 200] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        read_state_dict(corrupt)
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19" + b"\x00" * 20)
    with pytest.raises(CheckpointError, match="legacy"):
        read_state_dict(legacy)
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "absent.pt")


def test_broken_pickles_and_storages(tmp_path):
    record = _tensor_record("0", "FloatStorage", 4, 0, (4,), (1,))
    pkl = torch_pickle([("w", record)])
    cases = {
        "truncated pickle": (pkl[:-10], {"0": bytes(16)}, "corrupt"),
        "short storage": (pkl, {"0": bytes(8)}, "fewer than"),
        "missing storage": (pkl, {}, "lacks the storage record archive/data/0"),
        "out of bounds view": (
            torch_pickle([("w", _tensor_record("0", "FloatStorage", 4, 2, (4,), (1,)))]),
            {"0": bytes(16)},
            "reaches element",
        ),
    }
    for label, (data, storages, message) in cases.items():
        with pytest.raises(CheckpointError, match=message):
            read_state_dict(write_zip(tmp_path / "broken.pt", data, storages))
        assert label


def test_missing_key_wrong_shape_non_binary_and_unknown_key(tmp_path, rng):
    state = authors_state_dict(rng)
    for mutate, message in (
        (lambda s: s.pop("rnn_model.Conv_out_h.weight"), "lacks rnn_model.Conv_out_h.weight"),
        (
            lambda s: s.__setitem__("cnn_model.conv1.weight", np.ones((16, 1, 3, 3), np.float32)),
            r"cnn_model.conv1.weight has shape \(16, 1, 3, 3\); expected \(16, 1, 5, 5\)",
        ),
        (lambda s: s.__setitem__("fc.bias", np.zeros(5, np.float32)), r"fc.bias has shape \(5,\); expected \(4,\)"),
        (
            lambda s: s["rnn_model.ConvGates_i.weight"].__setitem__((0, 0, 2, 2), 0.3),
            "rnn_model.ConvGates_i.weight must hold binary",
        ),
        (
            lambda s: s.__setitem__("cnn_model.conv2.weight", np.ones((16, 1, 5, 5), np.float32)),
            "cnn_model.conv2.weight",
        ),
        (lambda s: s["thresh3"].__setitem__(0, np.nan), "thresh3 holds NaN"),
    ):
        broken = collections.OrderedDict((k, v.copy()) for k, v in state.items())
        mutate(broken)
        path = write_checkpoint(tmp_path / "broken.pt", broken)
        with pytest.raises(CheckpointError, match=message):
            torch_import.load_torch_checkpoint(path)
    noise = authors_state_dict(rng, noise=True)
    with pytest.raises(CheckpointError, match="rnn_model.rnn_threshold"):
        torch_import.model_from_state_dict(noise, arch="pixelrnn")
    with pytest.raises(CheckpointError, match="lacks rnn_model.rnn_threshold"):
        torch_import.model_from_state_dict(state, arch="pixelrnn-noise")
    with pytest.raises(CheckpointError, match="Unknown arch"):
        torch_import.model_from_state_dict(state, arch="convlstm")


# ---------------------------------------------------------------------------------------------
# The imported model against the authors' model in numpy


@pytest.mark.parametrize("arch", ["pixelrnn", "pixelrnn-noise"])
def test_imported_model_equals_the_authors_model(tmp_path, rng, clips, arch):
    noise = arch == "pixelrnn-noise"
    state = authors_state_dict(rng, classes=3, noise=noise)
    path = write_checkpoint(tmp_path / "model.pt", state)
    assert torch_import.detect_arch(read_state_dict(path)) == arch
    model = torch_import.load_torch_checkpoint(path)  # arch auto
    expected_readouts, expected_logits = authors_forward(state, clips, noise=noise)
    readouts = pixelrnn_tf.sensor_model(model).predict(clips[..., None], verbose=0)
    np.testing.assert_array_equal(readouts[:, 0, :, :, 0], expected_readouts)
    np.testing.assert_allclose(model.predict(clips[..., None], verbose=0), expected_logits, rtol=1e-4, atol=1e-4)
    cell = model.get_layer("recurrence").cell
    assert cell.forget_threshold == noise
    if noise:
        assert float(cell.theta.numpy()) == 0.5
        config = torch_import.config_from_state_dict(state)
        assert (config.cnn_noise_stddev, config.gate_noise_stddev, config.readout_noise_stddev) == (0.6, 0.6, 1.0)
        assert not config.noise_at_inference


def test_the_no_noise_gate_offset_matters(rng, clips):
    """The oracle's +0.001 is what the importer's sign(0) = +1 stands for: a gate threshold of
    +0.5 instead gives different readouts, so the equality above is not vacuous."""
    state = authors_state_dict(rng)
    plain, _ = authors_forward(state, clips)
    shifted, _ = authors_forward(dict(state, **{"rnn_model.rnn_threshold": np.float32([0.5])}), clips, noise=True)
    assert not np.array_equal(plain, shifted)


def test_trace_agrees_with_the_oracle_and_the_model(rng, clips):
    state = authors_state_dict(rng)
    model = torch_import.model_from_state_dict(state)
    stages = torch_import.trace_reference_stages(model, clips)
    expected_readouts, expected_logits = authors_forward(state, clips)
    np.testing.assert_array_equal(stages.readout, expected_readouts)
    np.testing.assert_array_equal(stages.output[:, -1], expected_readouts)
    np.testing.assert_array_equal(stages.hidden[:, 0], np.ones((2, 64, 64)))
    np.testing.assert_array_equal(stages.next_hidden[:, :-1], stages.hidden[:, 1:])
    np.testing.assert_array_equal(stages.fi + stages.fh >= 0, stages.forget_gate > 0)
    np.testing.assert_array_equal(stages.oi + stages.oh, stages.output)
    np.testing.assert_allclose(stages.logits, expected_logits, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The run directory and the ordinary life of an imported model


def test_import_writes_an_ordinary_run_directory(tmp_path, rng, clips):
    from pixelrnn_cli.workflows import import_checkpoint
    from pixelrnn_tf.config import ConfigError
    from training.run_config import RunConfig

    state = authors_state_dict(rng)
    checkpoint = write_checkpoint(tmp_path / "lips.pt", state)
    imported = import_checkpoint(checkpoint, tmp_path / "run")
    model, run = imported["model"], imported["run"].path
    assert imported["arch"] == "pixelrnn" and imported["forget_threshold"] is None and imported["classes"] == 4
    config = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert config.data.dataset == "tulips1" and config.model.decoder == "reference"
    assert config.model == torch_import.config_from_state_dict(state)
    reloaded = pixelrnn_tf.load_model(run / "best.keras")
    np.testing.assert_array_equal(
        reloaded.predict(clips[..., None], verbose=0), model.predict(clips[..., None], verbose=0)
    )
    provenance = json.loads((run / "imported_from.json").read_text())
    assert provenance["arch"] == "pixelrnn" and len(provenance["sha256"]) == 64
    with pytest.raises(ConfigError, match="already holds a run"):
        import_checkpoint(checkpoint, run)


def test_imported_model_trains(rng, clips):
    model = torch_import.model_from_state_dict(authors_state_dict(rng))
    before = model.get_layer("decoder").dense.kernel.numpy().copy()
    model.compile(tf.keras.optimizers.Adam(1e-3), tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(clips[..., None], np.array([0, 1]), epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(model.get_layer("decoder").dense.kernel.numpy(), before)
    kernels = model.get_layer("in_pixel_cnn").kernels[0].numpy()
    assert np.all(np.abs(kernels) <= 1.0)  # the latent weights stay in the clip range


def test_import_command_reports_and_refuses_an_unsafe_checkpoint(tmp_path, rng):
    from typer.testing import CliRunner

    from pixelrnn_cli.app import app

    runner = CliRunner()
    checkpoint = write_checkpoint(tmp_path / "noise.pt", authors_state_dict(rng, noise=True))
    result = runner.invoke(app, ["import-torch", str(checkpoint), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "pixelrnn-noise" in result.output and "forget-gate threshold          0.5000" in result.output
    evil = write_zip(tmp_path / "evil.pt", pickle.dumps(_Reduce(os.system, "true"), protocol=2), {})
    result = runner.invoke(app, ["import-torch", str(evil), "--out", str(tmp_path / "run2")])
    assert result.exit_code == 2 and "refused" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run2").exists()
