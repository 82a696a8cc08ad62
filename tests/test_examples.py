"""The runnable examples run, on tiny settings, and say what they claim."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_trains_emulates_and_exports(tmp_path):
    environment = dict(
        os.environ,
        QUICKSTART_TRAIN_CLIPS="27",
        QUICKSTART_EPOCHS="1",
        QUICKSTART_TEST_CLIPS="9",
        QUICKSTART_OUT=str(tmp_path / "export"),
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True, env=environment, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "noise none    accuracy" in result.stdout and "readouts equal to Keras 100.0%" in result.stdout
    assert "noise scamp5  accuracy" in result.stdout
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["splits"] == ["sensor", "decoder"] and "decoder/decoder.tflite" in manifest["files"]
