"""The `pixelrnn` command line. Thin: parse, call one library function, print."""

import functools
import json
import sys
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


ARCHS = ["pixelrnn", "convlstm", "convgru", "mgu", "srnn", "raw", "diff"]


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


@app.command()
@user_errors
def demo():
    """The main job: build the default binary PixelRNN and show what it costs the sensor."""
    summary(arch="pixelrnn", cnn_layers=1, float_=False, readout_pool=1, num_classes=9, as_json=False)


def main(argv: Optional[list] = None):
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            sys.exit(exit_.code)


if __name__ == "__main__":
    main()
