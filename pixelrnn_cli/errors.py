"""The one error handler of the command line: the project's named errors (a bad config, a model the
compiler or the exporter cannot take, a bad checkpoint, a missing file or run) are the user's to
fix, so they become one line on stderr and exit code 2; anything else is a bug and keeps its
traceback."""

import functools

import typer


def user_errors():
    """The exception classes that mean "fix your input", imported only when an error is handled."""
    try:
        from export import ExportError
        from pixelrnn_tf.config import ConfigError
        from pixelrnn_tf.torch_checkpoint import CheckpointError
        from sensor import CompileError, RegisterError
        from sensor.calibration import CalibrationError
    except ImportError:  # the library itself did not load: that traceback is the message
        return (FileNotFoundError,)
    return (ConfigError, CompileError, RegisterError, ExportError, CheckpointError, CalibrationError, FileNotFoundError)


def report_user_errors(function):
    """Wrap a command: named errors -> "Error: ..." on stderr and exit 2; others propagate."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - sorted below, the rest re-raised unchanged
            if isinstance(error, user_errors()):
                typer.echo(f"Error: {error}", err=True)
                raise typer.Exit(code=2) from None
            raise

    return wrapper
