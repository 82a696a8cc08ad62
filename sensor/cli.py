"""Bodies of the `pixelrnn emulate` and `pixelrnn finetune-decoder` commands.

Plain functions, registered in the `pixelrnn` typer app by pixelrnn_tf/cli.py; their docstrings
are the commands' help. This is the one module of `sensor` that reads run directories (through
training.evaluate.open_run and training.data.load_splits), so the emulator itself stays free of
training code.
"""

import json
import time
from pathlib import Path

import numpy as np

from pixelrnn_tf.files import save_model_atomic

NOISE_HELP = "none (exact), scamp5 (the calibrated preset) or a JSON file of sensor.NoiseModel fields."


def _open(run_dir, input_white, noise="none", calibrate=True, recurrent_white=None):
    """(run, config, model, program, splits): the run's best model compiled for the sensor, the
    program calibrated against `noise`'s drift if asked, and the run's data splits."""
    import pixelrnn_tf
    import sensor
    from training import data
    from training.evaluate import open_run

    run, config = open_run(run_dir)
    model = pixelrnn_tf.load_model(run / "best.keras")
    splits, _ = data.load_splits(config.data, config.model, config.train.batch_size)
    noise_model = sensor.resolve_noise(noise)
    if recurrent_white is None and noise_model.enabled and config.model.arch == "pixelrnn":
        recurrent_white = readout_gain(model, splits["train"], sensor.Scamp5())
    drift = noise_model if calibrate else None
    program = sensor.compile(model, input_white=input_white, recurrent_white=recurrent_white, drift=drift)
    return run, config, model, program, splits


def readout_gain(model, dataset, array, clips=256, quantile=99.0):
    """recurrent_white for a noisy array: the largest whole number of analog units per model unit
    that keeps `quantile`% of the model's PixelRNN readouts (on up to `clips` training clips)
    inside the analog range. The exact program's gain never saturates (|o| <= 50: 2 units on
    SCAMP-5), but trained readouts stay far smaller, and a larger gain lifts them above the
    analog noise: the rare extremes that saturate cost less than the noise they escape."""
    from pixelrnn_tf.models import sensor_model

    readouts, seen = [], 0
    for batch, _ in dataset:
        readouts.append(np.abs(sensor_model(model)(batch, training=False).numpy()).ravel())
        seen += len(batch)
        if seen >= clips:
            break
    level = max(float(np.percentile(np.concatenate(readouts), quantile)), 1.0)
    return float(max(1, int(min(-array.analog_min, array.analog_max) // level)))


def _decoder_model(model, clone=False):
    """readouts -> logits with the model's decoder (a fresh copy with the same weights if clone)."""
    from pixelrnn_tf._keras import tf

    decoder = model.get_layer("decoder")
    if clone:
        decoder = tf.keras.layers.deserialize(tf.keras.layers.serialize(decoder))
    shape = model.get_layer("readout").output_shape[1:]
    inputs = tf.keras.Input(shape)
    outputs = decoder(inputs)
    if clone:
        decoder.set_weights(model.get_layer("decoder").get_weights())
    return tf.keras.Model(inputs, outputs)


class _progress:
    """A rich progress bar of emulated frames, used as `with _progress(total, text) as bar:
    bar.update(n)`."""

    def __init__(self, total, description):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
        )
        self._task = self._progress.add_task(description, total=total)

    def __enter__(self):
        self._progress.start()
        return self

    def update(self, frames):
        self._progress.advance(self._task, frames)

    def __exit__(self, *exc):
        self._progress.stop()


def emulated_readouts(emulator, dataset, frames_total=None, description="emulating", max_clips=None):
    """(readouts, labels, saturated, frames, seconds) of every clip of a batched dataset."""
    readouts, labels, saturated, frames, seconds = [], [], 0, 0, 0.0
    with _progress(frames_total, description) as bar:
        for clips, batch_labels in dataset:
            clips = clips.numpy()
            if max_clips is not None and len(labels) and sum(map(len, labels)) >= max_clips:
                break
            result = emulator.run(clips, progress=lambda n: bar.update(n))
            readouts.append(result.readouts)
            labels.append(batch_labels.numpy())
            saturated += result.saturated
            frames += result.frames
            seconds += result.seconds
    return np.concatenate(readouts), np.concatenate(labels), saturated, frames, seconds


def emulate(
    run_dir: str,
    noise: str = "none",
    split: str = "test",
    repeats: int = 1,
    trace: str = None,
    input_white: float = 10.0,
    recurrent_white: float = None,
    seed: int = 0,
    max_clips: int = None,
    calibrate: bool = True,
    echo=print,
):
    """Run a trained model's in-pixel part on the SCAMP-5 emulator and compare it with Keras.

    Compiles RUN_DIR's best.keras into a SCAMP-5 program, emulates every clip of --split with
    --noise (none, scamp5 or a JSON NoiseModel file) --repeats times (different seeds), decodes
    the emulated readouts with the run's decoder and prints: accuracy on emulated readouts versus
    the Keras model, agreement of the readouts, saturated writes, instructions and estimated chip
    time per frame, and emulated frames per second. With --calibrate (the default) the program is
    calibrated against the drift of --noise, as a chip's program is calibrated against the chip
    (sensor.compile); --no-calibrate runs the exact program. --trace DIR writes the program listing,
    per-stage costs and PNG snapshots of the register planes of the first clip's first frame.
    """
    import sensor
    from pixelrnn_tf.models import sensor_model

    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}.")
    run, config, model, program, splits = _open(run_dir, input_white, noise, calibrate, recurrent_white)
    if split not in splits:
        raise ValueError(f"Unknown split {split!r}; choose train, val or test.")
    keras_readouts = sensor_model(model)
    decoder = _decoder_model(model)
    array = sensor.Scamp5()

    reference, labels = [], []
    for clips, batch_labels in splits[split]:
        if max_clips is not None and sum(map(len, labels)) >= max_clips:
            break
        reference.append(keras_readouts(clips, training=False).numpy())
        labels.append(batch_labels.numpy())
    reference, labels = np.concatenate(reference), np.concatenate(labels)
    keras_accuracy = float(np.mean(np.argmax(decoder.predict(reference, verbose=0), -1) == labels))

    runs = []
    for repeat in range(repeats):
        emulator = sensor.Emulator(program, array, noise=noise, seed=seed + repeat)
        readouts, emulated_labels, saturated, frames, seconds = emulated_readouts(
            emulator, splits[split], len(labels) * config.model.frames, f"emulating {split} ({repeat + 1}/{repeats})",
            max_clips,
        )
        readouts = readouts[: len(labels)]
        accuracy = float(np.mean(np.argmax(decoder.predict(readouts, verbose=0), -1) == labels))
        runs.append(
            {
                "accuracy": accuracy,
                "agreement": float(np.mean(readouts == reference)),
                "mean_abs_difference": float(np.mean(np.abs(readouts - reference))),
                "saturated_writes": int(saturated),
                "frames_per_second": frames / seconds if seconds else float("inf"),
            }
        )
    accuracies = [r["accuracy"] for r in runs]
    result = {
        "run_dir": str(run),
        "split": split,
        "clips": int(len(labels)),
        "noise": noise,
        "calibrated": bool(program.info.get("calibrated_for_drift")),
        "recurrent_white": program.info.get("recurrent_white"),
        "repeats": repeats,
        "keras_accuracy": keras_accuracy,
        "emulated_accuracy": float(np.mean(accuracies)),
        "emulated_accuracy_std": float(np.std(accuracies)),
        "readout_agreement": float(np.mean([r["agreement"] for r in runs])),
        "saturated_writes": int(np.sum([r["saturated_writes"] for r in runs])),
        "instructions_per_frame": program.instructions_per_frame(),
        "chip_ms_per_frame": 1e3 * program.seconds_per_frame(array),
        "emulated_frames_per_second": float(np.mean([r["frames_per_second"] for r in runs])),
        "readout_units": "model units (sensor value / recurrent_white)",
        "runs": runs,
    }
    if trace:
        result["trace"] = write_trace(trace, program, array, splits[split], noise, seed)
    echo(format_emulation(result))
    return result


def write_trace(directory, program, array, dataset, noise, seed):
    """Program listing, per-stage instruction counts and words, and register snapshots."""
    import sensor

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "program.txt").write_text(str(program) + "\n")
    stages = {}
    for section, steps in program.sections.items():
        for stage, instruction in steps:
            entry = stages.setdefault(stage, {"instructions": 0, "words": 0})
            entry["instructions"] += 1
            entry["words"] += instruction.words(array)
    (directory / "stages.json").write_text(json.dumps({"per_execution": stages, "window": program.window}, indent=2))
    clips, _ = next(iter(dataset))
    # snapshots run one frame eagerly: compiling each write's kernel would cost more than it saves
    emulator = sensor.Emulator(program, array, noise=noise, seed=seed, jit=False)
    paths = emulator.snapshots(clips.numpy()[0, ..., 0], directory / "snapshots")
    return {"directory": str(directory), "snapshots": len(paths)}


def format_emulation(result):
    lines = [
        f"Emulated {result['clips']} {result['split']} clips on SCAMP-5, noise {result['noise']}"
        + (", program calibrated for its drift" if result.get("calibrated") else "")
        + (f", recurrent_white {result['recurrent_white']:g}" if result.get("recurrent_white") else "")
        + f", {result['repeats']} repeat(s)",
        f"  accuracy, Keras model            {result['keras_accuracy']:.1%}",
        f"  accuracy, emulated readouts      {result['emulated_accuracy']:.1%}"
        + (f" +- {result['emulated_accuracy_std']:.1%}" if result["repeats"] > 1 else ""),
        f"  readouts equal to Keras          {result['readout_agreement']:.2%}",
        f"  saturated analog writes          {result['saturated_writes']:,}",
        f"  instructions per frame           {result['instructions_per_frame']:,.0f}",
        f"  estimated chip time per frame    {result['chip_ms_per_frame']:.3f} ms (paper: about 3.5 ms on SCAMP-5)",
        f"  emulated frames per second       {result['emulated_frames_per_second']:,.1f}",
    ]
    return "\n".join(lines)


def finetune_decoder(
    run_dir: str,
    readouts: str = "emulator",
    noise: str = "scamp5",
    epochs: int = 5,
    learning_rate: float = 1e-3,
    input_white: float = 10.0,
    recurrent_white: float = None,
    seed: int = 0,
    max_clips: int = None,
    out: str = None,
    calibrate: bool = True,
    echo=print,
):
    """Retrain only the off-sensor decoder on readouts from the emulator (the authors did this
    with the real chip's outputs).

    Emulates the train, val and test splits of RUN_DIR with --noise, trains a copy of the
    decoder on the emulated train readouts for --epochs (keeping the best val accuracy), and
    writes the model with the new decoder to OUT (default RUN_DIR/finetuned.keras). Prints the
    test accuracy on emulated readouts before and after. --readouts keras uses the Keras sensor
    model's readouts instead (a control: no emulator).
    """
    import pixelrnn_tf
    import sensor
    from pixelrnn_tf._keras import tf
    from pixelrnn_tf.models import sensor_model

    if readouts not in ("emulator", "keras"):
        raise ValueError(f"--readouts must be emulator or keras, got {readouts!r}.")
    noise_model = noise if readouts == "emulator" else "none"
    run, config, model, program, splits = _open(run_dir, input_white, noise_model, calibrate, recurrent_white)
    tf.keras.utils.set_random_seed(seed)
    features = {}
    for index, split in enumerate(("train", "val", "test")):
        if readouts == "keras":
            pairs = [(sensor_model(model)(c, training=False).numpy(), y.numpy()) for c, y in splits[split]]
            features[split] = (np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]))
        else:
            emulator = sensor.Emulator(program, sensor.Scamp5(), noise=noise, seed=seed + index)
            x, y, _, _, _ = emulated_readouts(emulator, splits[split], None, f"emulating {split}", max_clips)
            features[split] = (x, y)
    decoder = _decoder_model(model, clone=True)
    before = float(np.mean(np.argmax(decoder.predict(features["test"][0], verbose=0), -1) == features["test"][1]))
    decoder.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    best = {"val": -1.0, "weights": decoder.get_weights()}
    for _ in range(epochs):
        decoder.fit(*features["train"], batch_size=config.train.batch_size, epochs=1, verbose=0, shuffle=True)
        val = float(np.mean(np.argmax(decoder.predict(features["val"][0], verbose=0), -1) == features["val"][1]))
        if val > best["val"]:
            best = {"val": val, "weights": decoder.get_weights()}
    decoder.set_weights(best["weights"])
    after = float(np.mean(np.argmax(decoder.predict(features["test"][0], verbose=0), -1) == features["test"][1]))
    tuned = tf.keras.models.clone_model(model)
    tuned.set_weights(model.get_weights())
    tuned.get_layer("decoder").set_weights(decoder.layers[-1].get_weights())
    out = Path(out) if out else run / "finetuned.keras"
    save_model_atomic(tuned, out)
    result = {"readouts": readouts, "noise": noise, "test_accuracy_before": before, "test_accuracy_after": after,
              "best_val_accuracy": best["val"], "model": str(out)}
    echo(
        f"Decoder fine-tuned on {readouts} readouts (noise {noise}): test accuracy on those readouts "
        f"{before:.1%} -> {after:.1%} (best val {best['val']:.1%}); wrote {out}"
    )
    _ = pixelrnn_tf  # imported for its side effect: Keras 2 is selected before tf loads
    return result
