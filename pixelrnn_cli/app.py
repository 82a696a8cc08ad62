"""The `pixelrnn` command line. Thin: parse, call one library or workflow function, print.

Every command is registered through `command`, which loads TensorFlow quietly (startup.py) and
turns the project's named errors into one line and exit code 2 (errors.py). Library imports stay
inside the command bodies, so `--help` answers without loading TensorFlow.
"""

import functools
import json
from typing import Optional

import typer
import typer.core

from pixelrnn_cli import report
from pixelrnn_cli.errors import report_user_errors
from pixelrnn_cli.startup import load_tensorflow

HELP = "pixelrnn-tf: design, train, emulate and deploy in-pixel neural networks."
app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
_options = {"verbose": False}

ARCHS = ["pixelrnn", "convlstm", "convgru", "mgu", "srnn", "cnn", "raw", "diff"]


@app.callback()
def main_options(
    verbose: bool = typer.Option(False, "--verbose", help="Show TensorFlow's start-up log lines (CUDA, oneDNN)."),
):
    """pixelrnn-tf: design, train, emulate and deploy in-pixel neural networks."""
    _options["verbose"] = verbose


def command(name=None, target=app):
    """Register a command on `target`: TensorFlow is loaded quietly before the body runs, and the
    project's named errors become one line and exit code 2."""

    def register(function):
        @functools.wraps(function)  # typer reads the signature and help through __wrapped__
        def run(*args, **kwargs):
            load_tensorflow(_options["verbose"])
            return function(*args, **kwargs)

        target.command(name)(report_user_errors(run))
        return function

    return register


def _progress():
    from pixelrnn_cli.progress import RichProgress

    return RichProgress


# ---------------------------------------------------------------------------------- model library
@command()
def summary(
    arch: str = typer.Option("pixelrnn", help=f"Architecture: {', '.join(ARCHS)}."),
    cnn_layers: int = typer.Option(1, help="Binary CNN layers in the pixel array: 1 or 2."),
    float_: bool = typer.Option(False, "--float", help="Full-precision weights and activations instead of binary."),
    readout_pool: int = typer.Option(1, help="Max-pool the readout on the sensor by this factor."),
    num_classes: int = typer.Option(9, help="Decoder outputs."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
):
    """Print a model's larq summary and what it costs SCAMP-5 (Table 2 of the PixelRNN paper)."""
    import larq as lq

    import pixelrnn_tf
    import sensor

    model = pixelrnn_tf.build_model(
        arch=arch, cnn_layers=cnn_layers, binary=not float_, readout_pool=readout_pool, num_classes=num_classes
    )
    figures = pixelrnn_tf.account(model, sensor.Scamp5())
    if as_json:
        typer.echo(json.dumps({"model": model.name, **figures.to_dict()}, indent=2))
        return
    lq.models.summary(model, print_fn=typer.echo)
    typer.echo(report.account_lines(figures))


@command("upgrade-model")
def upgrade_model(
    path: str = typer.Argument(..., help="A .keras file (e.g. RUN_DIR/best.keras) saved by pixelrnn-tf 0.1."),
    out: Optional[str] = typer.Option(None, help="Where to write it (default: in place, through a temporary file)."),
):
    """Rewrite a model saved by pixelrnn-tf 0.1 in the current layout, so that plain Keras loads it.

    pixelrnn commands read old files as they are; this is for tf.keras.models.load_model."""
    from pixelrnn_tf.legacy import upgrade_model_file

    written, was_old = upgrade_model_file(path, out)
    typer.echo(f"rewrote {path} in the current layout: {written}" if was_old else f"{path} is already in the current layout")


@command()
def configs():
    """List the bundled run configs (paper settings for Cambridge and Tulips1, every baseline)."""
    from training.run_config import bundled_configs, describe

    for name in bundled_configs():
        typer.echo(f"{name:<32}{describe(name)}")


# ---------------------------------------------------------------------------------- training
@command()
def train(
    config: Optional[str] = typer.Argument(
        None, help="A bundled config name (see `pixelrnn configs`) or a JSON file. Default: the synthetic PixelRNN run."
    ),
    dataset: Optional[str] = typer.Option(None, help="synthetic_gestures, cambridge_hand_gesture or tulips1."),
    manual_dir: Optional[str] = typer.Option(None, help="Folder holding a manually downloaded data set."),
    epochs: Optional[int] = typer.Option(None, help="Override the config's number of epochs."),
    out: str = typer.Option("runs/default", help="Run directory (resumes an interrupted run there)."),
    seed: Optional[int] = typer.Option(None, help="Random seed for weights and data order."),
    strategy: Optional[str] = typer.Option(None, help="default, mirrored (all local devices) or multiworker (TF_CONFIG)."),
    arch: Optional[str] = typer.Option(None, help=f"Override the architecture: {', '.join(ARCHS)}."),
    cnn_layers: Optional[int] = typer.Option(None, help="Override the number of binary CNN layers: 1 or 2."),
    float_: Optional[bool] = typer.Option(None, "--float/--binary", help="Full-precision (32-bit float) or binary in-pixel weights and activations."),
    readout_pool: Optional[int] = typer.Option(None, help="Override the on-sensor max-pool of the readout (1 .. 64; floor pooling)."),
    set_: list[str] = typer.Option([], "--set", help="Override any config key: --set model.gate_noise_stddev=0.1 (repeatable)."),
):
    """Train a model with model.fit and write a run directory (best.keras, metrics.json, plots)."""
    from training.run_config import parse_overrides, resolve
    from training.train import train as run_training

    run_config = resolve(config).replace(
        data={"dataset": dataset, "manual_dir": manual_dir},
        train={"epochs": epochs, "seed": seed, "strategy": strategy},
        model={"arch": arch, "cnn_layers": cnn_layers, "binary": None if float_ is None else not float_, "readout_pool": readout_pool},
    ).override(parse_overrides(set_))
    metrics = run_training(run_config, out)
    typer.echo(report.metrics_lines(metrics))
    typer.echo(f"Run directory: {out}")


@command()
def demo(out: str = typer.Option("runs/demo", help="Run directory.")):
    """The main job: train the default binary PixelRNN on synthetic_gestures and report it."""
    from training.run_config import resolve
    from training.train import train as run_training

    metrics = run_training(resolve(None), out)
    typer.echo(report.metrics_lines(metrics))
    typer.echo(f"Run directory: {out}")


@command()
def evaluate(
    run_dir: str = typer.Argument(..., help="A run directory written by `pixelrnn train`."),
    split: str = typer.Option("test", help="train, val or test."),
    noise: bool = typer.Option(False, "--noise", help="Keep the trained analog noise on at inference."),
    noise_stddev: Optional[float] = typer.Option(None, help="Inference noise std for all noise sources (implies --noise)."),
    repeats: int = typer.Option(5, min=1, help="Repeats with noise on (mean and std are reported)."),
):
    """Reload a run's best model and print its accuracy (mean and std over repeats with noise)."""
    from training.evaluate import evaluate as run_evaluation

    result = run_evaluation(run_dir, split=split, noise=noise, noise_stddev=noise_stddev, repeats=repeats)
    typer.echo(report.evaluation_lines(result))


@command("import-torch")
def import_torch(
    checkpoint: str = typer.Argument(..., help="The authors' PyTorch checkpoint (.pt, zip format)."),
    out: str = typer.Option(..., "--out", help="Run directory to create."),
    arch: str = typer.Option("auto", help="auto, pixelrnn or pixelrnn-noise (auto: by the checkpoint's keys)."),
):
    """Import the PixelRNN authors' PyTorch checkpoint as a run directory (no torch needed).

    The checkpoint is untrusted input: anything in its pickle but tensors is refused."""
    from pixelrnn_cli.workflows import import_checkpoint

    typer.echo(report.import_lines(checkpoint, import_checkpoint(checkpoint, out, arch)))


# ---------------------------------------------------------------------------------- sensor
# How a model is compiled for the sensor: options shared by emulate and finetune-decoder.
INPUT_WHITE = typer.Option(10.0, help="Sensor units of one count of the CNN (one binary input).")
RECURRENT_WHITE = typer.Option(
    None,
    help="Sensor units of one count of the recurrent sums. Default: without noise the largest that never "
    "saturates (2 on SCAMP-5); with noise the largest that keeps 99% of the model's training readouts in range.",
)
CALIBRATE = typer.Option(
    True, help="Calibrate the program against the noise model's drift (see sensor.compile); no effect without noise."
)
NOISE = "none, scamp5 (the preset calibrated on the real chip), published (per-operation noise only) or a JSON file of sensor.NoiseModel fields (pixelrnn calibrate-noise writes one)."


@command()
def emulate(
    run_dir: str = typer.Argument(..., help="A run directory written by `pixelrnn train` (or import-torch)."),
    noise: str = typer.Option("none", help=f"Emulator noise: {NOISE}"),
    split: str = typer.Option("test", help="train, val or test."),
    repeats: int = typer.Option(1, min=1, help="Repeats with different noise seeds (mean and std are reported)."),
    trace: Optional[str] = typer.Option(None, help="Folder for the program listing, per-stage costs and register-plane PNGs."),
    input_white: float = INPUT_WHITE,
    recurrent_white: Optional[float] = RECURRENT_WHITE,
    seed: int = typer.Option(0, help="Noise seed."),
    max_clips: Optional[int] = typer.Option(None, min=1, help="Emulate at most this many clips of the split."),
    calibrate: bool = CALIBRATE,
):
    """Run a model's in-pixel part on the SCAMP-5 emulator, instruction by instruction, and compare with Keras.

    Prints the accuracy on emulated readouts versus the Keras model, the agreement of the readouts,
    saturated writes, instructions and estimated chip time per frame, and emulated frames per second."""
    from pixelrnn_cli.workflows import emulate_run

    result = emulate_run(
        run_dir, noise=noise, split=split, repeats=repeats, trace=trace, input_white=input_white,
        recurrent_white=recurrent_white, seed=seed, max_clips=max_clips, calibrate=calibrate, progress=_progress(),
    )
    typer.echo(report.emulation_lines(result))


@command("finetune-decoder")
def finetune_decoder(
    run_dir: str = typer.Argument(..., help="A run directory written by `pixelrnn train`."),
    readouts: str = typer.Option("emulator", help="emulator (emulated readouts) or keras (a control)."),
    noise: str = typer.Option("scamp5", help=f"Emulator noise: {NOISE}"),
    epochs: int = typer.Option(5, min=1, help="Decoder training epochs."),
    learning_rate: float = typer.Option(1e-3, help="Adam learning rate."),
    input_white: float = INPUT_WHITE,
    recurrent_white: Optional[float] = RECURRENT_WHITE,
    seed: int = typer.Option(0, help="Noise and training seed."),
    max_clips: Optional[int] = typer.Option(None, min=1, help="Emulate at most this many clips per split."),
    out: Optional[str] = typer.Option(None, help="Where to write the model (default RUN_DIR/finetuned.keras)."),
    calibrate: bool = CALIBRATE,
):
    """Retrain only the off-sensor decoder on readouts produced by the emulator."""
    from pixelrnn_cli.workflows import finetune_decoder as run_finetune

    result = run_finetune(
        run_dir, readouts=readouts, noise=noise, epochs=epochs, learning_rate=learning_rate, input_white=input_white,
        recurrent_white=recurrent_white, seed=seed, max_clips=max_clips, out=out, calibrate=calibrate,
        progress=_progress(),
    )
    typer.echo(report.finetune_lines(result))


@command("calibrate-noise")
def calibrate_noise(
    model: str = typer.Option(..., "--model", help="The model the readouts came from: a run directory, a .keras file or the authors' .pt checkpoint."),
    clips: str = typer.Option(..., "--clips", help="An .npz of binarized_x (clips, frames, H, W) and scamp5_readout (clips, h, w), 8-bit codes."),
    out: str = typer.Option(..., "--out", help="The noise file to write (JSON of sensor.NoiseModel fields); a .report.json and a .png go beside it."),
    input_white: float = INPUT_WHITE,
    recurrent_white: Optional[float] = typer.Option(None, help="Sensor units of one count of the recurrent sums (default: input_white, as the authors' chip program)."),
    holdout_every: int = typer.Option(3, min=2, help="Hold out every n-th clip: the figures are reported on those, the fit never sees them."),
    draws: int = typer.Option(3, min=1, help="Noisy emulations averaged per comparator-noise value tried."),
    repeats: int = typer.Option(3, min=1, help="Noise seeds per held-out figure."),
    seed: int = typer.Option(0, help="Noise seed."),
    plot: bool = typer.Option(True, help="Write the readouts-and-histograms PNG."),
):
    """Fit the emulator's analog model to a real chip's readouts of known inputs, and report it on held-out clips.

    Fits the readout's displacement, gain, offset and per-pixel fixed pattern, the comparator noise
    and the readout noise; prints the held-out distance, correlation, mean, std and decoder accuracy
    of the noise-free, the published and the calibrated emulation next to the real chip's."""
    from pixelrnn_cli.calibrate import calibrate_noise as run_calibration

    result = run_calibration(
        model, clips, out, input_white=input_white, recurrent_white=recurrent_white, holdout_every=holdout_every,
        draws=draws, repeats=repeats, seed=seed, plot=plot, progress=_progress(),
    )
    typer.echo(report.calibration_lines(result))


# ---------------------------------------------------------------------------------- reproduce
class _FigureGroup(typer.core.TyperGroup):
    """`pixelrnn reproduce NAME`: an unknown name is named, with the valid ones (exit code 2)."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            typer.echo(f"Error: unknown figure {args[0]!r}; choose one of {', '.join(self.list_commands(ctx))}.", err=True)
            raise typer.Exit(2)
        return super().resolve_command(ctx, args)


reproduce_app = typer.Typer(
    cls=_FigureGroup, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Reproduce the PixelRNN paper's figures and tables: one sweep of training runs each (resumable).",
)
app.add_typer(reproduce_app, name="reproduce")


def _reproduce(figure, dataset, manual_dir, data_dir, seeds, epochs, quick, out, executor, address, cpus, gpus, **extra):
    from pixelrnn_cli.progress import SweepProgress
    from pixelrnn_cli.reproduce import Options, reproduce

    options = Options(dataset=dataset, manual_dir=manual_dir, data_dir=data_dir, seeds=seeds, epochs=epochs, quick=quick, **extra)
    progress = SweepProgress(f"{figure} runs")
    try:
        result = reproduce(figure, options, out, executor, address, {"num_cpus": cpus, "num_gpus": gpus}, progress)
    finally:
        progress.close()
    typer.echo(report.reproduction_lines(result))


# Options every reproduction takes
SWEEP_OUT = typer.Option(..., help="Sweep folder: results.csv, summary.csv, the PNG and runs/ (an interrupted sweep resumes there).")
SWEEP_DATASET = typer.Option("synthetic_gestures", help="synthetic_gestures, cambridge_hand_gesture or tulips1.")
SWEEP_MANUAL_DIR = typer.Option(None, help="Folder holding the manually downloaded data set (Cambridge, Tulips1).")
SWEEP_DATA_DIR = typer.Option(None, help="TFDS data folder for the prepared data sets.")
SWEEP_SEEDS = typer.Option(None, help="Seeds per setting (default: fig2 3, fig3 10, table3 3; --quick: 2).")
SWEEP_EPOCHS = typer.Option(None, help="Override the epochs of every run.")
SWEEP_QUICK = typer.Option(False, "--quick", help="Small synthetic_gestures runs and 2 seeds: minutes instead of hours.")
SWEEP_EXECUTOR = typer.Option("local", help="local (one run after another) or ray (one Ray task per run; pip install 'pixelrnn-tf\\[cluster]').")
SWEEP_ADDRESS = typer.Option(None, help="Ray cluster address (default: start Ray on this machine).")
SWEEP_CPUS = typer.Option(1.0, help="CPUs each Ray task asks for.")
SWEEP_GPUS = typer.Option(0.0, help="GPUs each Ray task asks for.")


@command("fig2", target=reproduce_app)
def reproduce_fig2(
    out: str = SWEEP_OUT, dataset: str = SWEEP_DATASET, manual_dir: Optional[str] = SWEEP_MANUAL_DIR,
    data_dir: Optional[str] = SWEEP_DATA_DIR, seeds: Optional[int] = SWEEP_SEEDS, epochs: Optional[int] = SWEEP_EPOCHS,
    quick: bool = SWEEP_QUICK, executor: str = SWEEP_EXECUTOR, address: Optional[str] = SWEEP_ADDRESS,
    cpus: float = SWEEP_CPUS, gpus: float = SWEEP_GPUS,
):
    """Fig 2: accuracy vs in-pixel memory: RAW, DIFF and every recurrent cell on 1 and 2 CNN layers, binary and float."""
    _reproduce("fig2", dataset, manual_dir, data_dir, seeds, epochs, quick, out, executor, address, cpus, gpus)


@command("fig3", target=reproduce_app)
def reproduce_fig3(
    out: str = SWEEP_OUT, dataset: str = SWEEP_DATASET, manual_dir: Optional[str] = SWEEP_MANUAL_DIR,
    data_dir: Optional[str] = SWEEP_DATA_DIR, seeds: Optional[int] = SWEEP_SEEDS, epochs: Optional[int] = SWEEP_EPOCHS,
    quick: bool = SWEEP_QUICK, executor: str = SWEEP_EXECUTOR, address: Optional[str] = SWEEP_ADDRESS,
    cpus: float = SWEEP_CPUS, gpus: float = SWEEP_GPUS,
    pool_at: str = typer.Option("readout", help="readout (the authors' code; runs on the sensor as is) or input (the paper's text: before PixelRNN)."),
):
    """Fig 3: accuracy vs readout bandwidth: PixelRNN with pooling 1x1 .. 8x8, then 16 .. 64 in steps of 8."""
    _reproduce("fig3", dataset, manual_dir, data_dir, seeds, epochs, quick, out, executor, address, cpus, gpus, pool_at=pool_at)


@command("table3", target=reproduce_app)
def reproduce_table3(
    out: str = SWEEP_OUT, dataset: str = SWEEP_DATASET, manual_dir: Optional[str] = SWEEP_MANUAL_DIR,
    data_dir: Optional[str] = SWEEP_DATA_DIR, seeds: Optional[int] = SWEEP_SEEDS, epochs: Optional[int] = SWEEP_EPOCHS,
    quick: bool = SWEEP_QUICK, executor: str = SWEEP_EXECUTOR, address: Optional[str] = SWEEP_ADDRESS,
    cpus: float = SWEEP_CPUS, gpus: float = SWEEP_GPUS,
):
    """Table 3: noise-free and noise-trained PixelRNN, evaluated noise-free, with Keras noise, on the SCAMP-5 emulator, and fine-tuned."""
    _reproduce("table3", dataset, manual_dir, data_dir, seeds, epochs, quick, out, executor, address, cpus, gpus)


# ---------------------------------------------------------------------------------- export
def export_command(
    source: str = typer.Argument(..., metavar="RUN_DIR_OR_MODEL", help="A run directory (best.keras, config.json) or a .keras file."),
    split: str = typer.Option("sensor,decoder", help="sensor, decoder or sensor,decoder."),
    out: str = typer.Option(..., help="Output folder (replaced as a whole; never half-written)."),
    input_white: float = typer.Option(10.0, help="Sensor units of one count of the CNN; the CNN levels scale with it."),
    recurrent_white: Optional[float] = typer.Option(
        None, help="Sensor units of one count of the recurrent sums. Default: the largest that never saturates."
    ),
    representative_data: Optional[str] = typer.Option(
        None, help=".npy clips or .npz with clips or readouts: int8 calibration data. Default: the run's training split."
    ),
    evaluation_data: Optional[str] = typer.Option(
        None, help="Same format, with labels for the accuracy drop. Default: the run's test split, else the representative data."
    ),
    representative_clips: int = typer.Option(128, min=1, help="Clips taken from the run's training split for calibration."),
):
    """Export a trained model: sensor weight tables and an int8 TFLite Micro decoder."""
    from pixelrnn_cli.workflows import export_run

    result = export_run(
        source, out, split, input_white, recurrent_white, representative_data, evaluation_data, representative_clips
    )
    typer.echo(report.export_lines(result, out))


command("export")(export_command)

# `pixelrnn-export`: the same command as `pixelrnn export`, on its own.
export_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
command(target=export_app)(export_command)


def main(argv: Optional[list] = None):
    """Console-script entry point of `pixelrnn`; typer exits with the command's status."""
    app(args=argv)


def export_main(argv: Optional[list] = None):
    """Console-script entry point of `pixelrnn-export`."""
    export_app(args=argv, prog_name="pixelrnn-export")


if __name__ == "__main__":
    main()
