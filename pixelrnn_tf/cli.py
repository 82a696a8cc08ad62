"""The `pixelrnn` command line. Thin: parse, call one library function, print."""

import functools
import json
from typing import Optional

import typer

app = typer.Typer(
    help="pixelrnn-tf: design, train, emulate and deploy in-pixel neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class UserError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit code 2."""


def user_errors(func):
    """Turn expected user errors into a one-line message and exit code 2, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from pixelrnn_tf.config import ConfigError

        try:
            return func(*args, **kwargs)
        except (UserError, ConfigError, FileNotFoundError) as error:
            typer.echo(f"Error: {error}", err=True)
            raise typer.Exit(code=2)

    return wrapper


ARCHS = ["pixelrnn", "convlstm", "convgru", "mgu", "srnn", "cnn", "raw", "diff"]


@app.command()
@user_errors
def summary(
    arch: str = typer.Option("pixelrnn", help=f"Architecture: {', '.join(ARCHS)}."),
    cnn_layers: int = typer.Option(1, help="Binary CNN layers in the pixel array: 1 or 2."),
    float_: bool = typer.Option(False, "--float", help="Full-precision weights and activations instead of binary."),
    readout_pool: int = typer.Option(1, help="Max-pool the readout on the sensor by this factor."),
    num_classes: int = typer.Option(9, help="Decoder outputs."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
):
    """Print a model's larq summary and what it costs the sensor (Table 2 of the PixelRNN paper)."""
    import larq as lq

    import pixelrnn_tf

    if arch not in ARCHS:
        raise UserError(f"Unknown --arch {arch!r}; choose one of {', '.join(ARCHS)}.")
    model = pixelrnn_tf.build_model(
        arch=arch, cnn_layers=cnn_layers, binary=not float_, readout_pool=readout_pool, num_classes=num_classes
    )
    figures = pixelrnn_tf.account(model)
    if as_json:
        typer.echo(json.dumps({"model": model.name, **figures.to_dict()}, indent=2))
        return
    lq.models.summary(model, print_fn=typer.echo)
    typer.echo(format_account(figures))


def format_account(figures):
    lines = [
        "In-pixel cost (SCAMP-5)",
        f"  in-pixel parameters            {figures.in_pixel_parameters:,}",
        f"  readout values per {figures.window} frames     {figures.readout_values_per_window:,}",
        f"  bandwidth reduction vs RAW     {figures.bandwidth_reduction_vs_raw:,.0f}x",
        f"  memory per pixel               {figures.memory_bits_per_pixel} bits",
        f"  fits SCAMP-5                   {'yes' if figures.fits_scamp5 else 'no'}",
    ]
    lines += [f"    - {reason}" for reason in figures.reasons]
    return "\n".join(lines)


def format_metrics(metrics):
    accuracy = metrics["accuracy"]
    return "\n".join(
        [
            f"Model {metrics['model']}",
            f"  test accuracy                  {accuracy['test']:.1%}  ({metrics['test_clips']} clips)",
            f"  val / train accuracy           {accuracy['val']:.1%} / {accuracy['train']:.1%}",
            f"  in-pixel parameters            {metrics['in_pixel_parameters']:,}",
            f"  readout values per {metrics['window']} frames     {metrics['readout_values_per_window']:,}"
            f"  ({metrics['bandwidth_reduction_vs_raw']:,.0f}x less than RAW)",
            f"  memory per pixel               {metrics['memory_bits_per_pixel']} bits"
            f"  (fits SCAMP-5: {'yes' if metrics['fits_scamp5'] else 'no'})",
        ]
    )


@app.command()
@user_errors
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
):
    """Train a model with model.fit and write a run directory (best.keras, metrics.json, plots)."""
    from training.run_config import resolve
    from training.train import train as run_training

    run_config = resolve(config).replace(
        data={"dataset": dataset, "manual_dir": manual_dir}, train={"epochs": epochs, "seed": seed, "strategy": strategy}
    )
    metrics = run_training(run_config, out)
    typer.echo(format_metrics(metrics))
    typer.echo(f"Run directory: {out}")


@app.command()
@user_errors
def evaluate(
    run_dir: str = typer.Argument(..., help="A run directory written by `pixelrnn train`."),
    split: str = typer.Option("test", help="train, val or test."),
    noise: bool = typer.Option(False, "--noise", help="Keep the trained analog noise on at inference."),
    noise_stddev: Optional[float] = typer.Option(None, help="Inference noise std for all noise sources (implies --noise)."),
    repeats: int = typer.Option(5, help="Repeats with noise on (mean and std are reported)."),
):
    """Reload a run's best model and print its accuracy (mean and std over repeats with noise)."""
    from training.evaluate import evaluate as run_evaluation

    result = run_evaluation(run_dir, split=split, noise=noise, noise_stddev=noise_stddev, repeats=repeats)
    typer.echo(f"{'split':<8}{'noise':<8}{'repeats':<9}{'accuracy':<10}std")
    typer.echo(
        f"{result['split']:<8}{'on' if result['noise'] else 'off':<8}{result['repeats']:<9}"
        f"{result['accuracy']:<10.1%}{result['std']:.1%}"
    )


def _sensor_call(function, **kwargs):
    """Run a sensor/ command body; its ValueErrors are mistakes in the arguments or the run."""
    try:
        return function(echo=typer.echo, **kwargs)
    except ValueError as error:
        raise UserError(str(error)) from None


# How a model is compiled for the sensor: options shared by emulate and finetune-decoder.
INPUT_WHITE = typer.Option(10.0, help="Analog units of one binary input on the sensor.")
RECURRENT_WHITE = typer.Option(
    None,
    help="Analog units of one model unit in the recurrent sums. Default: without noise the largest that never "
    "saturates (2 on SCAMP-5); with noise the largest that keeps 99% of the model's training readouts in range.",
)
CALIBRATE = typer.Option(
    True, help="Calibrate the program against the noise model's drift (see sensor.compile); no effect without noise."
)


@app.command()
@user_errors
def emulate(
    run_dir: str = typer.Argument(..., help="A run directory written by `pixelrnn train` (or import-torch)."),
    noise: str = typer.Option("none", help="none, scamp5 (the calibrated preset) or a JSON noise-model file."),
    split: str = typer.Option("test", help="train, val or test."),
    repeats: int = typer.Option(1, help="Repeats with different noise seeds (mean and std are reported)."),
    trace: Optional[str] = typer.Option(None, help="Folder for the program listing, per-stage costs and register-plane PNGs."),
    input_white: float = INPUT_WHITE,
    recurrent_white: Optional[float] = RECURRENT_WHITE,
    seed: int = typer.Option(0, help="Noise seed."),
    max_clips: Optional[int] = typer.Option(None, help="Emulate at most this many clips of the split."),
    calibrate: bool = CALIBRATE,
):
    """Run a model's in-pixel part on the SCAMP-5 emulator, instruction by instruction, and compare with Keras."""
    from sensor.cli import emulate as run_emulation

    _sensor_call(
        run_emulation, run_dir=run_dir, noise=noise, split=split, repeats=repeats, trace=trace,
        input_white=input_white, recurrent_white=recurrent_white, seed=seed, max_clips=max_clips, calibrate=calibrate,
    )


@app.command("finetune-decoder")
@user_errors
def finetune_decoder(
    run_dir: str = typer.Argument(..., help="A run directory written by `pixelrnn train`."),
    readouts: str = typer.Option("emulator", help="emulator (emulated readouts) or keras (a control)."),
    noise: str = typer.Option("scamp5", help="Emulator noise: none, scamp5 or a JSON noise-model file."),
    epochs: int = typer.Option(5, help="Decoder training epochs."),
    learning_rate: float = typer.Option(1e-3, help="Adam learning rate."),
    input_white: float = INPUT_WHITE,
    recurrent_white: Optional[float] = RECURRENT_WHITE,
    seed: int = typer.Option(0, help="Noise and training seed."),
    max_clips: Optional[int] = typer.Option(None, help="Emulate at most this many clips per split."),
    out: Optional[str] = typer.Option(None, help="Where to write the model (default RUN_DIR/finetuned.keras)."),
    calibrate: bool = CALIBRATE,
):
    """Retrain only the off-sensor decoder on readouts produced by the emulator."""
    from sensor.cli import finetune_decoder as run_finetune

    _sensor_call(
        run_finetune, run_dir=run_dir, readouts=readouts, noise=noise, epochs=epochs, learning_rate=learning_rate,
        input_white=input_white, recurrent_white=recurrent_white, seed=seed, max_clips=max_clips, out=out,
        calibrate=calibrate,
    )


@app.command("import-torch")
@user_errors
def import_torch(
    checkpoint: str = typer.Argument(..., help="The authors' PyTorch checkpoint (.pt, zip format)."),
    out: str = typer.Option(..., "--out", help="Run directory to create."),
    arch: str = typer.Option("auto", help="auto, pixelrnn or pixelrnn-noise (auto: by the checkpoint's keys)."),
):
    """Import the PixelRNN authors' PyTorch checkpoint as a run directory (no torch needed)."""
    from pixelrnn_tf.torch_import import import_torch_command

    typer.echo(import_torch_command(checkpoint, out, arch))


@app.command()
def configs():
    """List the bundled run configs (paper settings for Cambridge and Tulips1, every baseline)."""
    from training.run_config import bundled_configs, configs_dir

    for name in bundled_configs():
        description = json.loads((configs_dir() / f"{name}.json").read_text()).get("description", "")
        typer.echo(f"{name:<32}{description}")


@app.command()
@user_errors
def demo(out: str = typer.Option("runs/demo", help="Run directory.")):
    """The main job: train the default binary PixelRNN on synthetic_gestures and report it."""
    train(config=None, dataset=None, manual_dir=None, epochs=None, out=out, seed=None, strategy=None)


def main(argv: Optional[list] = None):
    """Console-script entry point; typer exits with the command's status (2 for user errors)."""
    app(args=argv)


if __name__ == "__main__":
    main()
