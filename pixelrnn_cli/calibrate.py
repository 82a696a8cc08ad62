"""`pixelrnn calibrate-noise`: fit the emulator's analog model to a real chip's readouts of known
inputs (sensor.calibration), report on held-out clips, and write the fitted model as a noise file
that `--noise FILE` reads (the bundled `scamp5` preset is this file for the authors' chip)."""

import json
from pathlib import Path

import numpy as np

import sensor
from pixelrnn_tf.files import save_figure_atomic, write_text_atomic
from pixelrnn_tf.models import DECODER_LAYER, RECURRENCE_LAYER
from pixelrnn_tf.torch_import import load_torch_checkpoint
from sensor import calibration
from training.runs import RunDirectory

COMPARATOR_GRID = (0.0, 3.0, 6.0, 9.0)
PLOT_CLIPS = 4


def load_model(path):
    """A Keras model from a run directory, a .keras file or the authors' PyTorch checkpoint (.pt)."""
    path = Path(path)
    if path.is_dir():
        return RunDirectory(path).require_finished().load_model()
    if not path.is_file():
        raise FileNotFoundError(f"--model {path}: no such run directory, .keras file or .pt checkpoint.")
    if path.suffix == ".pt":
        return load_torch_checkpoint(path)
    from pixelrnn_tf._keras import tf

    return tf.keras.models.load_model(path)


def _check_fits(model, clips):
    window = model.get_layer(RECURRENCE_LAYER).window
    height, width = model.input_shape[2:4]
    if clips.frames.shape[2:] != (height, width):
        raise calibration.CalibrationError(
            f"The clips' frames are {clips.frames.shape[2]}x{clips.frames.shape[3]}, the model takes {height}x{width}."
        )
    if clips.frames.shape[1] < window:
        raise calibration.CalibrationError(f"The clips have {clips.frames.shape[1]} frames, fewer than the model's window K={window}.")


def calibrate_noise(model_path, clips_path, out, input_white=10.0, recurrent_white=None, holdout_every=3,
                    comparator_grid=COMPARATOR_GRID, draws=3, repeats=3, seed=0, plot=True, progress=None):
    """Fit on the calibration clips, report on the held-out ones (every `holdout_every`-th clip).
    Writes `out` (the NoiseModel as JSON), `<out>.report.json` (the figures) and, with plot,
    `<out>.png`. recurrent_white defaults to input_white: the authors' chip program runs the
    recurrent sums at the CNN's white. Returns the report."""
    model = load_model(model_path)
    clips = calibration.load_clips(clips_path)
    _check_fits(model, clips)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recurrent_white = input_white if recurrent_white is None else recurrent_white
    array = sensor.Scamp5()
    base = sensor.published_noise()
    calibrated = sensor.compile(model, input_white=input_white, recurrent_white=recurrent_white, config=array, drift=base)
    exact = sensor.compile(model, input_white=input_white, recurrent_white=recurrent_white, config=array)
    fit_index, held_index = calibration.split_clips(len(clips), holdout_every)
    fitting, held = clips.subset(fit_index), clips.subset(held_index)
    bar = _bar(progress, "calibrating", len(fitting) * calibrated.window * (1 + draws * len(comparator_grid)))
    with bar:
        fit = calibration.fit_noise(calibrated, array, fitting, comparator_grid, draws, seed, base, bar.update)
    decoder = model.get_layer(DECODER_LAYER)
    rows = {"real chip": calibration.real_figures(held, decoder)}
    conditions = (("noise-free emulation", exact, sensor.NO_NOISE), ("published per-operation noise", calibrated, base),
                  ("calibrated (this fit)", calibrated, fit.noise))
    with _bar(progress, "evaluating on held-out clips", len(held) * calibrated.window * (1 + 3 * repeats)) as bar:
        for name, program, noise in conditions:
            rows[name] = calibration.evaluate(program, array, held, noise, decoder, repeats, seed + 7, bar.update)
        expected = calibration.expected_figures(calibrated, array, held, fit.noise, repeats, seed + 7, bar.update)
    report = {
        "model": str(model_path),
        "clips": str(clips_path),
        "calibration_clips": list(fitting.names),
        "held_out_clips": list(held.names),
        "input_white": input_white,
        "recurrent_white": recurrent_white,
        "readout_shift": list(fit.noise.readout_shift),
        "shift_correlation": fit.shift_correlation,
        "comparator_scores": fit.comparator_scores,
        "held_out": rows,
        "held_out_expected": expected,
    }
    write_text_atomic(out, json.dumps(fit.noise.to_dict(), indent=1) + "\n")
    report_path = out.with_suffix(".report.json")
    write_text_atomic(report_path, json.dumps(report, indent=1) + "\n")
    report["noise_file"], report["report_file"] = str(out), str(report_path)
    if plot:
        report["plot"] = str(plot_readouts(out.with_suffix(".png"), exact, calibrated, array, held, fit.noise, seed))
    return report


def plot_readouts(path, exact, calibrated, array, clips, noise, seed=0):
    """Real vs calibrated-emulated vs noise-free readouts of a few held-out clips, and the value
    histograms of all of them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    some = clips.subset(np.arange(min(PLOT_CLIPS, len(clips))))
    planes = {
        "real chip": clips.readouts,
        "calibrated emulation": calibration.emulate(calibrated, array, clips, noise, seed),
        "noise-free emulation": calibration.emulate(exact, array, clips, sensor.NO_NOISE, seed),
    }
    figure, axes = plt.subplots(len(some) + 1, 3, figsize=(9, 3 * (len(some) + 1)))
    for column, (name, values) in enumerate(planes.items()):
        for row in range(len(some)):
            axes[row, column].imshow(values[row], cmap="gray", vmin=-12.8, vmax=12.8)
            axes[row, column].set_title(f"{name}\n{some.names[row] if some.names else row}", fontsize=8)
            axes[row, column].axis("off")
        axes[-1, column].hist(values.ravel(), bins=64, range=(-13, 13), color="C0")
        axes[-1, column].hist(clips.readouts.ravel(), bins=64, range=(-13, 13), histtype="step", color="k", label="real")
        axes[-1, column].set_title(f"values: {name}", fontsize=8)
        axes[-1, column].set_xlabel("readout (model units)")
    axes[-1, 0].legend(fontsize=7)
    figure.tight_layout()
    save_figure_atomic(figure, path, dpi=80)
    plt.close(figure)
    return path


class _Quiet:
    def __enter__(self):
        return self

    def update(self, n):
        pass

    def __exit__(self, *exc):
        return False


def _bar(progress, text, total):
    return progress(text, total) if progress is not None else _Quiet()

