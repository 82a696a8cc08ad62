"""`pixelrnn reproduce`: the paper's settings, the tables and figures a sweep writes, and its errors."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pixelrnn_cli import reproduce
from pixelrnn_cli.app import app
from pixelrnn_cli.reproduce import Options
from pixelrnn_tf.config import ConfigError
from training import sweep
from training.sweep import read_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def tiny_quick(monkeypatch):
    """--quick at the size of a test: 8 training clips, one epoch."""
    monkeypatch.setattr(reproduce, "QUICK", {"data": {"train_clips": 8, "val_clips": 4, "test_clips": 4}, "epochs": 1})
    monkeypatch.setattr(reproduce, "QUICK_EMULATED_CLIPS", 4)


def test_fig2_has_every_cell_on_both_cnn_depths_in_both_precisions_and_the_two_cameras():
    settings = reproduce.fig2_settings(Options(quick=True))
    points = {(s.columns["arch"], s.columns["cnn_layers"], s.columns["binary"]) for s in settings}
    cells = {(arch, layers, binary) for arch in ("convlstm", "convgru", "mgu", "srnn", "pixelrnn") for layers in (1, 2) for binary in (True, False)}
    assert points == cells | {("raw", 0, True), ("diff", 0, True)}
    for setting in settings:
        model = setting.config.model
        assert (model.arch, model.binary) == (setting.columns["arch"], setting.columns["binary"])
        assert setting.config.data.train_clips == reproduce.QUICK["data"]["train_clips"]


def test_fig3_pools_and_the_readout_values_the_paper_plots():
    import pixelrnn_tf
    import sensor

    settings = reproduce.fig3_settings(Options())
    assert [s.columns["pool"] for s in settings] == [1, 2, 3, 4, 5, 6, 7, 8, 16, 24, 32, 40, 48, 56, 64]
    values = [pixelrnn_tf.account(pixelrnn_tf.build_model(s.config.model), sensor.Scamp5()).readout_values_per_window for s in settings]
    # floor(64 / p) squared: the list 4096, 1024, 441, 256, 144, 100, 81, 64, 16, ..., 1
    assert values == [4096, 1024, 441, 256, 144, 100, 81, 64, 16, 4, 4, 1, 1, 1, 1]
    pooled_input = reproduce.fig3_settings(Options(pool_at="input"))
    assert [s.config.model.rnn_input_pool for s in pooled_input] == [s.config.model.readout_pool for s in settings]


def test_options_are_checked():
    with pytest.raises(ConfigError, match="synthetic_gestures, cambridge_hand_gesture, tulips1"):
        Options(dataset="mnist")
    with pytest.raises(ConfigError, match="--quick runs on synthetic_gestures"):
        Options(dataset="tulips1", quick=True)
    with pytest.raises(ConfigError, match="readout, input"):
        Options(pool_at="sensor")
    with pytest.raises(ConfigError, match="fig2, fig3, table3"):
        reproduce.make_sweep("fig4", Options(), "x")


@pytest.mark.slow
def test_fig3_quick_writes_results_summary_and_the_figure(tmp_path, tiny_quick, monkeypatch):
    monkeypatch.setattr(reproduce, "FIG3_POOLS", (1, 8))
    result = reproduce.reproduce("fig3", Options(quick=True, seeds=2), tmp_path)
    results = read_csv(tmp_path / sweep.RESULTS)
    assert [(r["setting"], r["seed"]) for r in results] == [("pool_1", 0), ("pool_1", 1), ("pool_8", 0), ("pool_8", 1)]
    assert [r["readout_values_per_window"] for r in results] == [4096, 4096, 64, 64]
    summary = read_csv(tmp_path / sweep.SUMMARY)
    for row in summary:
        accuracies = [r["accuracy_test"] for r in results if r["setting"] == row["setting"]]
        assert row["accuracy_test_mean"] == pytest.approx(np.mean(accuracies))
    assert (tmp_path / "fig3.png").read_bytes()[:8] == PNG_MAGIC
    assert result["plot"] == str(tmp_path / "fig3.png")


@pytest.mark.slow
def test_table3_quick_evaluates_each_model_under_every_condition(tmp_path, tiny_quick):
    reproduce.reproduce("table3", Options(quick=True, seeds=1), tmp_path)
    results = read_csv(tmp_path / sweep.RESULTS)
    assert [(r["setting"], r["condition"]) for r in results] == [
        (setting, condition) for setting in ("noise_free", "noise_trained") for condition in reproduce.CONDITIONS
    ]
    for setting in ("noise_free", "noise_trained"):
        folder = tmp_path / "runs" / setting / "seed_0"
        metrics = json.loads((folder / "metrics.json").read_text())
        rows = {r["condition"]: r for r in results if r["setting"] == setting}
        # evaluated noise-free, the run is what training measured
        assert rows["keras_noise_free"]["accuracy"] == pytest.approx(metrics["accuracy"]["test"])
        config = json.loads((folder / "config.json").read_text())["model"]
        trained_noise = {key: config[key] for key in reproduce.TABLE3_NOISE}
        assert trained_noise == (reproduce.TABLE3_NOISE if setting == "noise_trained" else dict.fromkeys(trained_noise, 0.0))
        assert (folder / "finetuned.keras").is_file()
    assert len(read_csv(tmp_path / sweep.SUMMARY)) == 8
    assert (tmp_path / "table3.png").read_bytes()[:8] == PNG_MAGIC


def test_cli_errors_name_the_problem_and_exit_2(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["reproduce", "fig9", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "fig2, fig3, table3" in result.output
    missing = tmp_path / "no_data_here"
    result = runner.invoke(
        app, ["reproduce", "fig2", "--dataset", "tulips1", "--manual-dir", str(missing), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2 and str(missing) in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    result = runner.invoke(app, ["train", "--set", "model.redout_pool=2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "model.readout_pool" in result.output
