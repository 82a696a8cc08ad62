"""The decoder half of `export/`: the int8 TFLite Micro decoder, its C sources and the CLI.

Oracles: the trained Keras decoder (float), LiteRT and the TFLite Micro interpreter run on the
exported file (each against the other), LiteRT's own list of the model's ops, and the bytes of
decoder.tflite for the C array."""

import hashlib
import json
import re

import numpy as np
import pytest

import export
import pixelrnn_tf
from export import micro
from pixelrnn_tf._keras import tf


def _model(decoder="linear", seed=0, **overrides):
    tf.keras.utils.set_random_seed(seed)
    model = pixelrnn_tf.build_model(decoder=decoder, num_classes=9, **overrides)
    if decoder == "reference":  # a trained decoder's state: BN statistics, a negative sign, an offset
        layer = model.get_layer("decoder")
        channels = layer.batch_norm.gamma.shape[0]
        stats = np.random.default_rng(seed)
        layer.batch_norm.set_weights(
            [stats.uniform(0.3, 1, channels), stats.normal(0, 0.3, channels), stats.normal(0, 2, channels), stats.uniform(10, 50, channels)]
        )
        layer.scale.assign(-0.3)
        layer.offset.assign(0.05)
    return model


def _clips(rng, n, frames=16):
    return rng.standard_normal((n, frames, 64, 64, 1)).astype(np.float32)


@pytest.mark.parametrize(
    "decoder,overrides",
    [("linear", {}), ("reference", {}), ("linear", {"readout_pool": 4}), ("reference", {"arch": "diff"})],
)
def test_single_window_decoder_is_the_trained_decoder(decoder, overrides, rng):
    model = _model(decoder, **overrides)
    readouts = pixelrnn_tf.sensor_model(model)(_clips(rng, 3, frames=32), training=False).numpy()
    window_model = export.window_decoder(model)
    per_window = np.stack([window_model.predict(readouts[:, w], batch_size=1, verbose=0) for w in range(2)], axis=1)
    np.testing.assert_allclose(per_window.mean(axis=1), model.get_layer("decoder")(readouts).numpy(), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module", params=["linear", "reference"])
def exported(request, tmp_path_factory):
    rng = np.random.default_rng(7)
    model = _model(request.param)
    out = tmp_path_factory.mktemp(request.param) / "export"
    clips = _clips(rng, 60)
    labels = rng.integers(0, 9, 40)
    result = export.export_model(
        model, out, "decoder", representative={"clips": clips[:20]}, evaluation={"clips": clips[20:], "labels": labels}
    )
    return model, out, result, clips[20:], labels


def test_tflite_micro_and_litert_agree_bit_for_bit_and_with_the_float_decoder(exported):
    model, out, result, clips, labels = exported
    flatbuffer = (out / "decoder" / "decoder.tflite").read_bytes()
    report = json.loads((out / "decoder" / "decoder.json").read_text())
    from ai_edge_litert.interpreter import Interpreter

    litert = Interpreter(model_path=str(out / "decoder" / "decoder.tflite"))
    litert.allocate_tensors()
    inp, outp = litert.get_input_details()[0], litert.get_output_details()[0]
    assert (inp["dtype"], outp["dtype"]) == (np.int8, np.int8)
    assert report["input"]["scale"] == pytest.approx(inp["quantization"][0]) and report["input"]["zero_point"] == inp["quantization"][1]
    assert report["output"]["scale"] == pytest.approx(outp["quantization"][0]) and report["output"]["zero_point"] == outp["quantization"][1]
    assert tuple(inp["shape"]) == (1, 64, 64, 1) and tuple(outp["shape"]) == (1, 9)

    readouts = pixelrnn_tf.sensor_model(model)(clips, training=False).numpy()[:, 0]
    scale, zero = inp["quantization"]
    scaled = readouts.astype(np.float64) / scale
    q = np.clip(np.trunc(scaled + np.copysign(0.5, scaled)) + zero, -128, 127).astype(np.int8)  # std::round
    from tflite_micro.python.tflite_micro import runtime

    tflm = runtime.Interpreter.from_bytes(flatbuffer, arena_size=report["arena_bytes"])  # the measured arena suffices
    on_litert, on_micro = [], []
    for x in q:
        litert.set_tensor(inp["index"], x[None])
        litert.invoke()
        on_litert.append(litert.get_tensor(outp["index"])[0].copy())
        tflm.set_input(x[None], 0)
        tflm.invoke()
        on_micro.append(np.array(tflm.get_output(0))[0])
    difference = np.abs(np.stack(on_micro).astype(np.int64) - np.stack(on_litert))
    # Bit-identical but for the runtimes' rounding of values at a half-way point (off by one, rare).
    assert difference.max() <= 1 and (difference > 0).mean() <= 0.001
    assert report["verification"]["micro_vs_litert"]["differing_values"] == (difference > 0).sum()
    if model.get_layer("decoder").__class__.__name__ == "LinearDecoder":
        assert not difference.any()

    float_class = model.predict(clips, verbose=0).argmax(-1)
    int8_class = ((np.stack(on_litert).astype(np.float64) - outp["quantization"][1]) * outp["quantization"][0]).argmax(-1)
    assert np.mean(float_class == int8_class) >= 0.99
    check = report["verification"]
    assert check["class_agreement"] == pytest.approx(np.mean(float_class == int8_class))
    assert check["float_accuracy"] == pytest.approx(np.mean(float_class == labels))
    assert check["accuracy_drop"] == pytest.approx(check["float_accuracy"] - check["int8_accuracy"])

    example = report["example"]
    litert.set_tensor(inp["index"], np.array(example["readout_int8"], np.int8).reshape(1, 64, 64, 1))
    litert.invoke()
    assert litert.get_tensor(outp["index"])[0].tolist() == example["logits_int8"]
    np.testing.assert_array_equal(np.array(example["readout_int8"]).reshape(64, 64, 1), q[0])


def test_c_sources_hold_the_flatbuffer_and_exactly_its_ops(exported):
    model, out, result, _, _ = exported
    folder = out / "decoder"
    flatbuffer = (folder / "decoder.tflite").read_bytes()
    source = (folder / "decoder_model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_decoder_model_data[] = {" in source
    data = bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", source))
    assert data == flatbuffer
    assert re.search(r"const int g_decoder_model_data_len = (\d+);", source).group(1) == str(len(flatbuffer))
    assert "extern const unsigned char g_decoder_model_data[];" in (folder / "decoder_model_data.h").read_text()

    from ai_edge_litert.interpreter import Interpreter

    litert = Interpreter(model_content=flatbuffer)
    litert.allocate_tensors()
    ops = {op["op_name"] for op in litert._get_ops_details()} - {"DELEGATE"}
    header = (folder / "op_resolver.h").read_text()
    registered = re.findall(r"resolver\.(\w+)\(\)\);  // (\w+)", header)
    assert {name for _, name in registered} == ops and len(registered) == len(ops)
    assert "MicroMutableOpResolver<kDecoderOpCount>" in header and f"kDecoderOpCount = {len(ops)};" in header
    assert all(method == micro.MICRO_OPS[name] for method, name in registered)


def test_flash_arena_and_manifest(exported):
    model, out, result, _, _ = exported
    report = json.loads((out / "decoder" / "decoder.json").read_text())
    assert report["flash_bytes"] == (out / "decoder" / "decoder.tflite").stat().st_size < 40_000
    assert 0 < report["arena_bytes"] < 16_384
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["files"]) == [
        "decoder/decoder.json",
        "decoder/decoder.tflite",
        "decoder/decoder_model_data.cc",
        "decoder/decoder_model_data.h",
        "decoder/op_resolver.h",
    ]
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["arch"] == "pixelrnn" and manifest["window"] == 16 and manifest["readout_shape"] == [64, 64, 1]
    assert manifest["versions"]["tflite-micro"] and manifest["versions"]["ai-edge-litert"] and manifest["versions"]["tensorflow"]


# Bad input ------------------------------------------------------------------------------------


def test_decoder_without_representative_data_is_an_error_before_writing(tmp_path):
    with pytest.raises(export.ExportError, match="needs representative data"):
        export.export_model(_model(), tmp_path / "out", "sensor,decoder")
    assert list(tmp_path.iterdir()) == []


def test_representative_data_of_the_wrong_shape_is_an_error(tmp_path, rng):
    with pytest.raises(export.ExportError, match=r"T a multiple of K = 16"):
        export.export_model(_model(), tmp_path / "out", "decoder", representative={"clips": _clips(rng, 2, frames=12)})
    with pytest.raises(export.ExportError, match=r"readouts have shape"):
        export.export_model(_model(), tmp_path / "out", "decoder", representative={"readouts": np.zeros((2, 1, 32, 32, 1))})
    assert list(tmp_path.iterdir()) == []


# Command line ---------------------------------------------------------------------------------


def _cli(argv):
    from pixelrnn_cli.app import export_main as main

    try:
        main(argv)
    except SystemExit as exit_:
        return exit_.code
    return 0


def test_cli_bad_input_exits_2_before_writing(tmp_path, capsys):
    model_path = tmp_path / "model.keras"
    _model().save(model_path)
    out = tmp_path / "out"
    assert _cli([str(model_path), "--split", "sensor,bogus", "--out", str(out)]) == 2
    assert "Unknown split 'bogus'" in capsys.readouterr().err
    assert _cli([str(tmp_path / "missing_run"), "--out", str(out)]) == 2
    assert "No run directory or model file" in capsys.readouterr().err
    assert _cli([str(model_path), "--split", "decoder", "--out", str(out)]) == 2
    assert "needs representative data" in capsys.readouterr().err
    assert _cli([str(model_path), "--split", "sensor", "--input-white", "300", "--out", str(out)]) == 2
    assert "outside SCAMP-5's analog range [-128, 127]; use --input-white 254 or less" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_cli_exports_a_model_file_with_representative_data(tmp_path, capsys, rng):
    model_path = tmp_path / "model.keras"
    _model("reference").save(model_path)
    np.save(tmp_path / "clips.npy", _clips(rng, 12))
    out = tmp_path / "out"
    assert _cli([str(model_path), "--out", str(out), "--representative-data", str(tmp_path / "clips.npy")]) == 0
    printed = capsys.readouterr().out
    assert "TFLite Micro vs LiteRT" in printed and "flash" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"] == ["sensor", "decoder"] and manifest["source"] == str(model_path)
    assert len(manifest["files"]) == 8


@pytest.mark.slow
def test_cli_exports_a_trained_run_with_its_training_split(tmp_path, capsys):
    from training.run_config import RunConfig
    from training.train import train

    config = RunConfig.from_dict(
        {
            "model": {"decoder": "reference"},
            "data": {"train_clips": 18, "val_clips": 9, "test_clips": 27},
            "train": {"epochs": 1, "batch_size": 9},
        }
    )
    train(config, tmp_path / "run", verbose=0)
    out = tmp_path / "export"
    assert _cli([str(tmp_path / "run"), "--split", "decoder", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"accuracy: float [\d.]+%, int8 [\d.]+%, drop", printed)
    report = json.loads((out / "decoder" / "decoder.json").read_text())
    assert report["verification"]["clips"] == 27  # the run's test split
    assert report["representative_windows"] == 18  # from its training split
    assert report["verification"]["class_agreement"] >= 0.99
