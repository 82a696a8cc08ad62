"""The package as a user meets it: a fresh interpreter, the Keras-2 switch, the CLI."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pixelrnn_cli.app import app, export_app


def _python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)


def test_import_in_fresh_interpreter_selects_keras_2():
    result = _python("import pixelrnn_tf, tensorflow as tf, larq; print(tf.keras.layers.Layer.__module__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras")


def test_keras_3_already_loaded_is_a_clear_error():
    code = (
        "import tensorflow as tf\n"
        "tf.keras.layers.Dense  # binds tf.keras to Keras 3\n"
        "import pixelrnn_tf\n"
    )
    result = _python(code)
    assert result.returncode != 0
    assert "KerasVersionError" in result.stderr
    assert "TF_USE_LEGACY_KERAS=1" in result.stderr and "import pixelrnn_tf" in result.stderr


runner = CliRunner()

# Every command of `pixelrnn`; a command that disappears or appears without help fails here.
COMMANDS = [
    "summary", "calibrate-noise", "upgrade-model", "configs", "train", "demo", "evaluate", "import-torch", "emulate", "finetune-decoder", "export",
    "reproduce",
]
SUBCOMMANDS = {"reproduce": ["fig2", "fig3", "table3"]}


def test_summary_json_has_the_table_2_figures():
    result = runner.invoke(app, ["summary", "--arch", "convgru", "--cnn-layers", "2", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["in_pixel_parameters"] == 952
    assert figures["readout_values_per_window"] == 4096
    assert figures["memory_bits_per_pixel"] == 129
    assert figures["sensor"] == "SCAMP-5" and figures["fits_sensor"] is True


def test_summary_prints_larq_table_and_the_sensor_cost_by_hand():
    """Full-precision PixelRNN, 1-layer CNN: 16 x 25 CNN weights + 1 threshold + 4 x 25 cell
    weights = 501 parameters; memory = the float32 state h (32 bits) + the 16 float32 conv outputs
    of a macropixel (512 bits) = 544 bits, over SCAMP-5's 32 bytes."""
    result = runner.invoke(app, ["summary", "--arch", "pixelrnn", "--float"])
    assert result.exit_code == 0, result.output
    assert "in_pixel_cnn" in result.output  # larq's per-layer table
    assert "in-pixel parameters            501\n" in result.output
    assert "readout values per 16 frames     4,096\n" in result.output
    assert "bandwidth reduction vs RAW     256x\n" in result.output
    assert "memory per pixel               544 bits (of 256 per macropixel)\n" in result.output
    assert "fits SCAMP-5                   no\n" in result.output
    assert "needs 544 bits of features per 4x4 macropixel; SCAMP-5 has 256 (32 bytes)" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["summary", "--arch", "lstm"], "Unknown arch 'lstm'"),
        (["summary", "--cnn-layers", "3"], "cnn_layers must be 1 or 2"),
        (["summary", "--readout-pool", "65"], "readout_pool 65 is larger than the 64x64 readout plane"),
        (["emulate", "no/such/run"], "not a finished run directory"),
        (["export", "no/such/run", "--out", "x"], "No run directory or model file at no/such/run"),
        (["import-torch", "no/such.pt", "--out", "x"], "No checkpoint at no/such.pt"),
    ],
)
def test_cli_user_errors_exit_2_without_traceback(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    """Only the project's named errors are the user's to fix; a bug is not dressed up as one."""
    from pixelrnn_cli import workflows

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(workflows, "emulate_run", broken)
    result = runner.invoke(app, ["emulate", "some/run"])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)


def test_every_command_has_help():
    import typer

    assert sorted(typer.main.get_command(app).commands) == sorted(COMMANDS)
    nested = [[group, name] for group, names in SUBCOMMANDS.items() for name in names]
    for command in [[]] + [[name] for name in COMMANDS] + nested:
        result = runner.invoke(app, command + ["--help"])
        assert result.exit_code == 0 and "Usage" in result.output, command
    result = runner.invoke(export_app, ["--help"])
    assert result.exit_code == 0 and "RUN_DIR_OR_MODEL" in result.output


def test_tensorflow_start_up_lines_are_hidden_unless_verbose():
    command = "import sys; from pixelrnn_cli.app import main; main(sys.argv[1:])"
    args = ["summary", "--arch", "srnn", "--json"]
    plain = subprocess.run([sys.executable, "-c", command, *args], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["in_pixel_parameters"] == 451
    assert plain.stderr == ""
    verbose = subprocess.run([sys.executable, "-c", command, "--verbose", *args], capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 0, verbose.stderr
    assert "oneDNN" in verbose.stderr or "cuda" in verbose.stderr.lower()


def test_atomic_writes_keep_the_old_file_when_writing_fails(tmp_path):
    from pixelrnn_tf.files import save_model_atomic, write_text_atomic

    target = tmp_path / "config.json"
    write_text_atomic(target, "old")

    class Exploding:
        def save(self, path):
            open(path, "w").write("half a model")
            raise OSError("disk full")

    model_file = tmp_path / "best.keras"
    model_file.write_text("old model")
    with pytest.raises(OSError, match="disk full"):
        save_model_atomic(Exploding(), model_file)
    assert model_file.read_text() == "old model" and target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "config.json"]  # no temp files left
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
