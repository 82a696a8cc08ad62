"""Workflows that join run directories (training) with the emulator (sensor) and the exporter
(export): emulate a run, fine-tune its decoder on emulated readouts, export a run, import a
checkpoint as a run. Importable functions that return results and print nothing; the `pixelrnn`
commands are thin wrappers around them.

Long loops report through `progress`: a callable `progress(description, total)` returning a
context manager with `update(n)` (the CLI passes a rich progress bar); None shows nothing.
"""

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

import export
import sensor
from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError
from pixelrnn_tf.models import DECODER_LAYER, ENCODER_LAYER, READOUT_LAYER, RECURRENCE_LAYER, sensor_model
from pixelrnn_tf.torch_import import AUTHORS_NOISE, config_from_state_dict, model_from_state_dict, read_state_dict, resolve_arch
from training.runs import FINETUNED, SPLITS, RunDirectory

# The data and training sections of an imported run: the paper's Tulips1 setting, so that
# `pixelrnn evaluate` and fine-tuning work on an imported run as on a trained one.
IMPORTED_DATA = {"dataset": "tulips1", "protocol": "pixelrnn", "translate": 0.1}
IMPORTED_TRAIN = {"epochs": 60, "batch_size": 8, "learning_rate": 0.001}
READOUT_SOURCES = ("emulator", "keras")
# Clips of the training split whose readouts choose the recurrent gain on a noisy array.
GAIN_CLIPS = 256


class _NoProgress:
    def __init__(self, description=None, total=None):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


@dataclasses.dataclass
class SensorRun:
    """A run's best model compiled for the sensor, with everything the workflows need."""

    run: RunDirectory
    config: object  # training.run_config.RunConfig
    model: object
    program: sensor.Program
    splits: dict
    array: sensor.ArrayConfig


def _take(dataset, max_clips):
    """The batches of `dataset` until max_clips clips (None: all) have been seen."""
    seen = 0
    for clips, labels in dataset:
        if max_clips is not None and seen >= max_clips:
            return
        seen += len(clips)
        yield clips, labels


def keras_readouts(model, dataset, max_clips=None):
    """(readouts, labels) of the Keras sensor model on the batches of `dataset`."""
    readout_model = sensor_model(model)
    readouts, labels = [], []
    for clips, batch_labels in _take(dataset, max_clips):
        readouts.append(readout_model(clips, training=False).numpy())
        labels.append(np.asarray(batch_labels))
    return np.concatenate(readouts), np.concatenate(labels)


def open_for_sensor(run_dir, noise="none", input_white=10.0, recurrent_white=None, calibrate=True):
    """A finished run compiled for SCAMP-5: with noise, the recurrent gain comes from the model's
    training readouts (sensor.recurrent_gain) unless given, and the program is calibrated for the
    noise model's drift unless calibrate is False."""
    run = RunDirectory(run_dir).require_finished()
    config = run.read_config()
    model = run.load_model()
    splits, _ = run.splits(config)
    array = sensor.Scamp5()
    noise_model = sensor.resolve_noise(noise)
    if recurrent_white is None and noise_model.enabled and config.model.arch == "pixelrnn":
        recurrent_white = sensor.recurrent_gain(keras_readouts(model, splits["train"], GAIN_CLIPS)[0], array)
    drift = noise_model if calibrate else None
    program = sensor.compile(model, input_white=input_white, recurrent_white=recurrent_white, config=array, drift=drift)
    return SensorRun(run, config, model, program, splits, array)


def emulated_readouts(emulator, dataset, max_clips=None, description="emulating", total=None, progress=None):
    """(readouts, labels, saturated writes, frames, seconds) of the clips of a batched dataset."""
    readouts, labels, saturated, frames, seconds = [], [], 0, 0, 0.0
    with (progress or _NoProgress)(description, total) as bar:
        for clips, batch_labels in _take(dataset, max_clips):
            result = emulator.run(np.asarray(clips), progress=bar.update)
            readouts.append(result.readouts)
            labels.append(np.asarray(batch_labels))
            saturated += result.saturated
            frames += result.frames
            seconds += result.seconds
    return np.concatenate(readouts), np.concatenate(labels), saturated, frames, seconds


def decoder_model(model, clone=False):
    """readouts -> logits with the model's decoder (a fresh copy with the same weights if clone)."""
    decoder = model.get_layer(DECODER_LAYER)
    if clone:
        decoder = tf.keras.layers.deserialize(tf.keras.layers.serialize(decoder))
    inputs = tf.keras.Input(model.get_layer(READOUT_LAYER).output_shape[1:])
    outputs = decoder(inputs)
    if clone:
        decoder.set_weights(model.get_layer(DECODER_LAYER).get_weights())
    return tf.keras.Model(inputs, outputs)


def _accuracy(decoder, readouts, labels):
    return float(np.mean(np.argmax(decoder.predict(readouts, verbose=0), -1) == labels))


def _check_split(split):
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")


def emulate_run(
    run_dir,
    noise="none",
    split="test",
    repeats=1,
    trace=None,
    input_white=10.0,
    recurrent_white=None,
    seed=0,
    max_clips=None,
    calibrate=True,
    progress=None,
):
    """Run a trained model's in-pixel part on the SCAMP-5 emulator and compare it with Keras.

    Compiles the run's best.keras (see open_for_sensor), emulates every clip of `split` with
    `noise` `repeats` times (seeds seed, seed + 1, ...), decodes the emulated readouts with the
    run's decoder, and returns a dict: accuracy on emulated readouts and of the Keras model, the
    readouts' agreement with Keras, saturated writes, instructions and estimated chip time per
    frame, emulated frames per second, per repeat and aggregated. `trace`: a folder for the program
    listing, per-stage costs and register-plane PNGs of the first clip's first frame."""
    _check_split(split)
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}.")
    compiled = open_for_sensor(run_dir, noise, input_white, recurrent_white, calibrate)
    reference, labels = keras_readouts(compiled.model, compiled.splits[split], max_clips)
    decoder = decoder_model(compiled.model)
    runs = []
    for repeat in range(repeats):
        emulator = sensor.Emulator(compiled.program, compiled.array, noise=noise, seed=seed + repeat)
        readouts, _, saturated, frames, seconds = emulated_readouts(
            emulator, compiled.splits[split], max_clips, f"emulating {split} ({repeat + 1}/{repeats})",
            len(labels) * compiled.config.model.frames, progress,
        )
        readouts = readouts[: len(labels)]
        runs.append(
            {
                "accuracy": _accuracy(decoder, readouts, labels),
                "agreement": float(np.mean(readouts == reference)),
                "mean_abs_difference": float(np.mean(np.abs(readouts - reference))),
                "saturated_writes": int(saturated),
                "frames_per_second": frames / seconds if seconds else float("inf"),
            }
        )
    result = _emulation_summary(compiled, split, len(labels), noise, runs, _accuracy(decoder, reference, labels))
    if trace:
        clip = np.asarray(next(iter(compiled.splits[split]))[0])[0]
        result["trace"] = sensor.write_trace(trace, compiled.program, compiled.array, clip, noise, seed)
    return result


def _emulation_summary(compiled, split, clips, noise, runs, keras_accuracy):
    program, accuracies = compiled.program, [r["accuracy"] for r in runs]
    return {
        "run_dir": str(compiled.run),
        "split": split,
        "clips": int(clips),
        "noise": noise,
        "calibrated": bool(program.info.get("calibrated_for_drift")),
        "recurrent_white": program.info.get("recurrent_white"),
        "repeats": len(runs),
        "keras_accuracy": keras_accuracy,
        "emulated_accuracy": float(np.mean(accuracies)),
        "emulated_accuracy_std": float(np.std(accuracies)),
        "readout_agreement": float(np.mean([r["agreement"] for r in runs])),
        "saturated_writes": int(np.sum([r["saturated_writes"] for r in runs])),
        "instructions_per_frame": program.instructions_per_frame(),
        "chip_ms_per_frame": 1e3 * program.chip_time(compiled.array)["total"],
        "chip_instruction_ms_per_frame": 1e3 * program.seconds_per_frame(compiled.array),
        "emulated_frames_per_second": float(np.mean([r["frames_per_second"] for r in runs])),
        "readout_units": "model units (sensor value / recurrent_white)",
        "runs": runs,
    }


def _split_readouts(compiled, readouts, noise, seed, max_clips, progress):
    """{split: (readouts, labels)} of every split, from the emulator or (a control) from Keras."""
    features = {}
    for index, split in enumerate(SPLITS):
        if readouts == "keras":
            features[split] = keras_readouts(compiled.model, compiled.splits[split], max_clips)
        else:
            emulator = sensor.Emulator(compiled.program, compiled.array, noise=noise, seed=seed + index)
            x, y, _, _, _ = emulated_readouts(emulator, compiled.splits[split], max_clips, f"emulating {split}", None, progress)
            features[split] = (x, y)
    return features


def _fit_best(decoder, features, epochs, batch_size):
    """Train `decoder` one epoch at a time and keep the weights of the best val accuracy."""
    best = {"val": -1.0, "weights": decoder.get_weights()}
    for _ in range(epochs):
        decoder.fit(*features["train"], batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
        val = _accuracy(decoder, *features["val"])
        if val > best["val"]:
            best = {"val": val, "weights": decoder.get_weights()}
    decoder.set_weights(best["weights"])
    return best["val"]


def finetune_decoder(
    run_dir,
    readouts="emulator",
    noise="scamp5",
    epochs=5,
    learning_rate=1e-3,
    input_white=10.0,
    recurrent_white=None,
    seed=0,
    max_clips=None,
    out=None,
    calibrate=True,
    progress=None,
):
    """Retrain only the off-sensor decoder on readouts from the emulator (the PixelRNN authors did
    this with the real chip's outputs).

    Emulates the train, val and test splits of the run with `noise`, trains a copy of the decoder
    on the emulated train readouts for `epochs` (keeping the best val accuracy), and writes the
    model with the new decoder to `out` (default RUN_DIR/finetuned.keras). readouts="keras" uses
    the Keras sensor model's readouts instead (a control: no emulator). Returns the test accuracy
    on those readouts before and after, the best val accuracy and the model's path."""
    if readouts not in READOUT_SOURCES:
        raise ConfigError(f"readouts must be one of {', '.join(READOUT_SOURCES)}, got {readouts!r}.")
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}.")
    compiled = open_for_sensor(run_dir, noise if readouts == "emulator" else "none", input_white, recurrent_white, calibrate)
    tf.keras.utils.set_random_seed(seed)
    features = _split_readouts(compiled, readouts, noise, seed, max_clips, progress)
    decoder = decoder_model(compiled.model, clone=True)
    before = _accuracy(decoder, *features["test"])
    decoder.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    best_val = _fit_best(decoder, features, epochs, compiled.config.train.batch_size)
    tuned = tf.keras.models.clone_model(compiled.model)
    tuned.set_weights(compiled.model.get_weights())
    tuned.get_layer(DECODER_LAYER).set_weights(decoder.layers[-1].get_weights())
    path = compiled.run.save_model(tuned, out or FINETUNED)
    return {
        "readouts": readouts,
        "noise": noise,
        "test_accuracy_before": before,
        "test_accuracy_after": _accuracy(decoder, *features["test"]),
        "best_val_accuracy": best_val,
        "model": str(path),
    }


def export_run(
    source,
    out,
    split="sensor,decoder",
    input_white=10.0,
    recurrent_white=None,
    representative_data=None,
    evaluation_data=None,
    representative_clips=128,
):
    """Export a run directory or a .keras file (see export.export_model). From a run directory the
    int8 decoder is calibrated on up to `representative_clips` clips of its training split and
    checked on its test split, unless data files are given. Returns export_model's result."""
    splits = export.parse_splits(split)
    path = Path(source)
    run = RunDirectory(path).require_finished() if path.is_dir() else None
    if run is None and not path.is_file():
        raise export.ExportError(f"No run directory or model file at {path}.")
    model = run.load_model() if run else export.load_source(path)
    representative = export.load_data_file(representative_data) if representative_data else None
    evaluation = export.load_data_file(evaluation_data) if evaluation_data else None
    if "decoder" in splits and representative is None:
        if run is None:
            raise export.ExportError(
                "The decoder split needs representative data: give --representative-data FILE (.npy clips or "
                ".npz with clips or readouts), or export from a run directory."
            )
        representative = run.sample("train", representative_clips)
        if evaluation is None:
            evaluation = run.sample("test", 10**9)
    return export.export_model(
        model, out, splits, input_white, representative, evaluation, source_name=str(source), recurrent_white=recurrent_white
    )


def import_checkpoint(checkpoint, out, arch="auto", overwrite=False):
    """Import the PixelRNN authors' PyTorch checkpoint into a run directory: best.keras,
    imported_from.json (source path, SHA-256, arch) and config.json (the model, the paper's
    Tulips1 data and training settings). Returns {"run", "model", "arch", "classes",
    "cnn_threshold", "forget_threshold", "training_noise"}.

    `pixelrnn evaluate OUT` then measures it like any trained run; `pixelrnn train` with the same
    config trains from scratch, not from these weights."""
    state_dict = read_state_dict(checkpoint)
    arch = resolve_arch(state_dict, arch)
    config = config_from_state_dict(state_dict, arch)
    model = model_from_state_dict(state_dict, arch)
    run_config = {
        "description": f"imported from the PixelRNN authors' PyTorch checkpoint {Path(checkpoint).name} ({arch})",
        "model": config.to_dict(),
        "data": dict(IMPORTED_DATA),
        "train": dict(IMPORTED_TRAIN),
    }
    provenance = {
        "checkpoint": os.path.abspath(checkpoint),
        "sha256": hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest(),
        "arch": arch,
        "tensors": {key: list(value.shape) for key, value in state_dict.items()},
    }
    run = RunDirectory(out).create(run_config, model, provenance, overwrite=overwrite)
    cell = model.get_layer(RECURRENCE_LAYER).cell
    return {
        "run": run,
        "model": model,
        "arch": arch,
        "classes": int(model.output_shape[-1]),
        "cnn_threshold": float(model.get_layer(ENCODER_LAYER).thresholds[0].numpy()),
        "forget_threshold": float(cell.theta.numpy()) if cell.forget_threshold else None,
        "training_noise": dict(AUTHORS_NOISE) if cell.forget_threshold else {},
    }


__all__ = [
    "SensorRun",
    "decoder_model",
    "emulate_run",
    "emulated_readouts",
    "export_run",
    "finetune_decoder",
    "import_checkpoint",
    "keras_readouts",
    "open_for_sensor",
]
