"""The package as a user meets it: a fresh interpreter, the Keras-2 switch, the CLI."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pixelrnn_tf.cli import app


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


def test_summary_json_has_the_table_2_figures():
    result = runner.invoke(app, ["summary", "--arch", "convgru", "--cnn-layers", "2", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["in_pixel_parameters"] == 952
    assert figures["readout_values_per_window"] == 4096
    assert figures["memory_bits_per_pixel"] == 129
    assert figures["fits_scamp5"] is True


def test_summary_prints_larq_table_and_sensor_cost():
    result = runner.invoke(app, ["summary", "--arch", "pixelrnn", "--float"])
    assert result.exit_code == 0, result.output
    assert "in_pixel_cnn" in result.output  # larq's per-layer table
    assert "fits SCAMP-5                   no" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["summary", "--arch", "lstm"], "Unknown --arch 'lstm'"),
        (["summary", "--cnn-layers", "3"], "cnn_layers must be 1 or 2"),
        (["summary", "--readout-pool", "3"], "readout_pool 3 must divide"),
    ],
)
def test_cli_user_errors_exit_2_without_traceback(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [[], ["summary"], ["demo"]])
def test_every_command_has_help(command):
    result = runner.invoke(app, command + ["--help"])
    assert result.exit_code == 0 and "Usage" in result.output


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
