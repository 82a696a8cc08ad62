"""`export_model`: a trained model -> DIR/sensor (weight tables), DIR/decoder (int8 TFLite Micro
model) and DIR/manifest.json, verified before anything is moved into place.

Every check that can fail on bad input (split names, a non-binary model, a threshold outside the
sensor's range, no representative data, DIR being some other folder) runs before any file is
written. The files are written to a temporary folder next to DIR, checked (the int8 decoder runs on
TFLite Micro and LiteRT, bit-identical outputs, >= 99% agreement with the float decoder), and only
then moved into place, so DIR always holds either the previous export or the complete new one.
"""

import hashlib
import json
import os
import platform
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

import pixelrnn_tf
from pixelrnn_tf.models import RECURRENCE_LAYER

from export import decoder as decoder_module
from export import micro
from export.errors import ExportError
from export.sensor_tables import dumps, sensor_tables, write_sensor_tables

SPLITS = ("sensor", "decoder")
MANIFEST = "manifest.json"
MIN_AGREEMENT = 0.99
# Off-by-one int8 logits allowed between TFLite Micro and LiteRT (see micro.compare_runtimes).
MAX_ROUNDING_DIFFERENCES = 0.001
VERSIONED = ("pixelrnn-tf", "tensorflow", "tf-keras", "larq", "numpy", "tflite-micro", "ai-edge-litert")


def parse_splits(splits):
    """'sensor,decoder' or a sequence -> a tuple in canonical order; unknown names raise."""
    names = [s.strip() for s in splits.split(",")] if isinstance(splits, str) else [str(s).strip() for s in splits]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in SPLITS]
    if unknown or not names:
        raise ExportError(
            f"Unknown split {', '.join(map(repr, unknown)) or '(none given)'}; --split takes sensor, decoder or sensor,decoder."
        )
    return tuple(s for s in SPLITS if s in names)


def load_source(source):
    """The model of `source`: a Keras model, or the path of a `.keras` file."""
    if hasattr(source, "get_layer"):
        return source
    path = Path(source)
    if not path.is_file():
        raise ExportError(f"No model file at {path}: give a .keras file (or, on the command line, a run directory).")
    return pixelrnn_tf.load_model(path)


def load_data_file(path):
    """Clips or readouts (and optional labels) from .npy (clips (B, T, H, W, 1)) or .npz (arrays
    named `clips` or `readouts`, optionally `labels`)."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"No data file at {path}.")
    if path.suffix == ".npy":
        return {"clips": np.load(path)}
    if path.suffix == ".npz":
        with np.load(path) as arrays:
            data = {key: arrays[key] for key in ("clips", "readouts", "labels") if key in arrays}
        if ("clips" in data) == ("readouts" in data):
            raise ExportError(f"{path} must hold exactly one of the arrays 'clips' or 'readouts' (and optionally 'labels').")
        return data
    raise ExportError(f"{path}: representative and evaluation data are .npy (clips) or .npz (clips or readouts) files.")


def readouts_of(model, data, what="representative data"):
    """{"readouts": (B, N, H', W', C) float32, "labels": (B,) or None} from clips or readouts."""
    if data is None:
        return None
    shape = decoder_module.readout_shape(model)
    labels = data.get("labels")
    if data.get("readouts") is not None:
        readouts = np.asarray(data["readouts"], dtype=np.float32)
        if readouts.ndim == 4:
            readouts = readouts[:, None]
        if readouts.ndim != 5 or readouts.shape[2:] != shape:
            raise ExportError(
                f"The {what} readouts have shape {readouts.shape}; this model's are (clips, windows, {', '.join(map(str, shape))})."
            )
    else:
        clips = np.asarray(data["clips"], dtype=np.float32)
        frame = tuple(int(d) for d in model.input_shape[2:])
        window = model.get_layer(RECURRENCE_LAYER).window
        if clips.ndim != 5 or clips.shape[2:] != frame or clips.shape[1] % window:
            raise ExportError(
                f"The {what} clips have shape {clips.shape}; this model takes (clips, T, {', '.join(map(str, frame))}) "
                f"with T a multiple of K = {window}."
            )
        readouts = pixelrnn_tf.sensor_model(model).predict(clips, batch_size=16, verbose=0).astype(np.float32)
    if len(readouts) == 0:
        raise ExportError(f"The {what} is empty.")
    if labels is not None and len(labels) != len(readouts):
        raise ExportError(f"The {what} has {len(readouts)} clips but {len(labels)} labels.")
    return {"readouts": readouts, "labels": None if labels is None else np.asarray(labels).astype(np.int64)}


def versions():
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_out_dir(out):
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise ExportError(
            f"{out} exists and is not a previous export (no {MANIFEST} in it); choose an empty or new --out folder."
        )


def _move_into_place(staging, out):
    """Replace `out` by `staging` with two renames, so `out` is never a half-written export."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.rename(out, old / "export")
    os.rename(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_decoder(
    model, folder, representative, evaluation, min_agreement=MIN_AGREEMENT, max_rounding_differences=MAX_ROUNDING_DIFFERENCES
):
    """Write decoder.tflite, decoder_model_data.cc/.h, op_resolver.h and decoder.json into
    `folder` after verifying the int8 model; returns the contents of decoder.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shape = decoder_module.readout_shape(model)
    window_model = decoder_module.window_decoder(model)
    windows = evaluation["readouts"].reshape((-1,) + shape)
    # The rewritten float decoder must be the trained one, window by window.
    expected = decoder_module.float_logits(model, windows[:, None])
    rewritten = window_model.predict(windows, batch_size=1, verbose=0)
    if not np.allclose(rewritten, expected, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(expected).max())):
        raise ExportError("Internal error: the single-window float decoder does not reproduce the trained decoder.")

    flatbuffer = decoder_module.convert_int8(window_model, representative["readouts"].reshape((-1,) + shape))
    ops = micro.builtin_ops(flatbuffer)
    (in_scale, in_zero), (out_scale, out_zero), in_shape, out_shape = micro.io_quantization(flatbuffer)
    inputs = micro.quantize(windows, in_scale, in_zero)
    on_micro = micro.run_micro(flatbuffer, inputs)
    on_litert = micro.run_litert(flatbuffer, inputs)
    runtimes = micro.compare_runtimes(on_micro, on_litert)
    if runtimes["max_difference"] > 1 or runtimes["differing_values"] > max_rounding_differences * runtimes["values"]:
        raise ExportError(
            f"TFLite Micro and LiteRT disagree on {runtimes['differing_values']} of {runtimes['values']} int8 logits "
            f"(largest difference {runtimes['max_difference']}): more than rounding at half-way points explains."
        )
    clips, per_clip = evaluation["readouts"].shape[:2], int(evaluation["readouts"].shape[1])
    int8_logits = micro.dequantize(on_micro, out_scale, out_zero).reshape(clips[0], per_clip, -1).mean(axis=1)
    float_logits = decoder_module.float_logits(model, evaluation["readouts"])
    int8_class, float_class = int8_logits.argmax(-1), float_logits.argmax(-1)
    agreement = float(np.mean(int8_class == float_class))
    verification = {"clips": int(clips[0]), "windows": int(len(windows)), "class_agreement": agreement, "micro_vs_litert": runtimes}
    labels = evaluation.get("labels")
    if labels is not None:
        verification["float_accuracy"] = float(np.mean(float_class == labels))
        verification["int8_accuracy"] = float(np.mean(int8_class == labels))
        verification["accuracy_drop"] = verification["float_accuracy"] - verification["int8_accuracy"]
    if agreement < min_agreement:
        raise ExportError(
            f"The int8 decoder agrees with the float decoder on {agreement:.1%} of {clips[0]} clips' classes, "
            f"below {min_agreement:.0%}; give more or more typical --representative-data."
        )
    arena = micro.arena_bytes(flatbuffer, inputs[0])

    (folder / "decoder.tflite").write_bytes(flatbuffer)
    source, header = micro.model_data_sources(flatbuffer)
    (folder / "decoder_model_data.cc").write_text(source)
    (folder / "decoder_model_data.h").write_text(header)
    (folder / "op_resolver.h").write_text(micro.op_resolver_header(ops))
    report = {
        "input": {"shape": list(map(int, in_shape)), "dtype": "int8", "scale": float(in_scale), "zero_point": int(in_zero)},
        "output": {"shape": list(map(int, out_shape)), "dtype": "int8", "scale": float(out_scale), "zero_point": int(out_zero)},
        "windows": "one window's readout per invoke; average the dequantised logits of a clip's T/K windows",
        "ops": ops,
        "flash_bytes": len(flatbuffer),
        "arena_bytes": arena,
        "arena_measured_on": f"TFLite Micro {metadata.version('tflite-micro')} Python interpreter, {platform.machine()}",
        "representative_windows": int(np.prod(representative["readouts"].shape[:2])),
        "verification": verification,
        "example": {
            "readout_int8": inputs[0].reshape(-1).tolist(),
            "logits_int8": on_micro[0].tolist(),
            "class": int(on_micro[0].argmax()),
        },
    }
    (folder / "decoder.json").write_text(dumps(report))
    return report


def export_model(
    source,
    out,
    splits=SPLITS,
    input_white=10,
    representative=None,
    evaluation=None,
    min_agreement=MIN_AGREEMENT,
    source_name=None,
    recurrent_white=None,
    array=None,
):
    """Export `source` (a Keras model or a .keras file) into folder `out`.

    input_white, recurrent_white: sensor units of one count of the CNN and of the recurrent sums
    (recurrent_white: default the compiler's); array: the sensor (default sensor.Scamp5()).
    representative, evaluation: {"clips" or "readouts": array, "labels": optional} (see
    load_data_file); needed for the decoder split; evaluation defaults to the representative data.
    source_name: what the manifest names as the source (default: the path, or the model's name).
    Returns {"out", "manifest", "sensor" (tables), "decoder" (decoder.json contents)}.
    """
    splits = parse_splits(splits)
    model = load_source(source)
    out = Path(out)
    _check_out_dir(out)
    in_pixel = pixelrnn_tf.in_pixel_tables(model)
    tables = sensor_tables(in_pixel, input_white, recurrent_white, array) if "sensor" in splits else None
    if "decoder" in splits:
        if representative is None:
            raise ExportError(
                "The decoder split needs representative data (real readouts for int8 calibration): give "
                "--representative-data FILE, or a run directory whose training split can be loaded."
            )
        representative = readouts_of(model, representative)
        evaluation = readouts_of(model, evaluation, "evaluation data") if evaluation is not None else representative

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; the export is an ordinary folder
    try:
        result = {"out": out, "sensor": tables, "decoder": None}
        if tables is not None:
            write_sensor_tables(tables, staging / "sensor")
        if "decoder" in splits:
            result["decoder"] = export_decoder(model, staging / "decoder", representative, evaluation, min_agreement)
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        manifest = {
            "format": "pixelrnn-export/1",
            "source": str(source_name or (model.name if hasattr(source, "get_layer") else source)),
            "model": model.name,
            "arch": in_pixel.arch,
            "in_pixel_cnn_layers": len(in_pixel.cnn_kernels),
            "window": in_pixel.window,
            "readout_shape": list(in_pixel.readout_shape),
            "splits": list(splits),
            "input_white": float(input_white),
            "files": {str(p.relative_to(staging)): {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in files},
            "versions": versions(),
        }
        (staging / MANIFEST).write_text(dumps(manifest))
        result["manifest"] = manifest
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result
