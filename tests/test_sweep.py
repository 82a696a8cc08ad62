"""The sweep runner (training.sweep): runs gathered into results.csv, summaries by seed, resuming,
the Ray executor; and the run-config names and overrides the sweeps are made of."""

import json

import numpy as np
import pytest

from pixelrnn_tf.config import ConfigError
from training import run_config, sweep
from training.run_config import parse_overrides, resolve
from training.sweep import Setting, Sweep, read_csv

TINY_DATA = {"train_clips": 8, "val_clips": 4, "test_clips": 4}
TINY_TRAIN = {"epochs": 1, "batch_size": 4}


def tiny(**model):
    return resolve("default").replace(data=TINY_DATA, train=TINY_TRAIN, model=model)


def two_conditions(run_dir):
    """An evaluate hook: two rows per run, one of them the run's own test accuracy."""
    accuracy = json.loads((run_dir / "metrics.json").read_text())["accuracy"]["test"]
    return [{"condition": "as_trained", "accuracy": accuracy}, {"condition": "complement", "accuracy": 1 - accuracy}]


SETTINGS = [Setting("pool_1", tiny(), {"pool": 1}), Setting("pool_3", tiny(readout_pool=3), {"pool": 3})]


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    rows = Sweep(out, SETTINGS, seeds=[0, 1]).run()
    return out, rows


def run_dir(out, setting, seed):
    return out / "runs" / setting / f"seed_{seed}"


@pytest.mark.slow
def test_results_csv_holds_one_row_per_run_as_its_run_directory_reports_it(finished_sweep):
    out, rows = finished_sweep
    results = read_csv(out / sweep.RESULTS)
    assert [(r["setting"], int(r["seed"])) for r in results] == [("pool_1", 0), ("pool_1", 1), ("pool_3", 0), ("pool_3", 1)]
    for row in results:
        folder = run_dir(out, row["setting"], int(row["seed"]))
        metrics = json.loads((folder / "metrics.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        assert config["train"]["seed"] == row["seed"] and config["model"]["readout_pool"] == row["pool"]
        for split in ("train", "val", "test"):
            assert row[f"accuracy_{split}"] == pytest.approx(metrics["accuracy"][split])
        assert row["memory_bits_per_pixel"] == metrics["memory_bits_per_pixel"]
    # floor pooling: 64 // 3 = 21 values a side
    assert {r["setting"]: r["readout_values_per_window"] for r in results} == {"pool_1": 4096, "pool_3": 441}


@pytest.mark.slow
def test_summary_is_the_mean_and_sample_std_over_seeds(finished_sweep):
    out, _ = finished_sweep
    results = read_csv(out / sweep.RESULTS)
    summary = {row["setting"]: row for row in read_csv(out / sweep.SUMMARY)}
    for setting in ("pool_1", "pool_3"):
        test = np.array([r["accuracy_test"] for r in results if r["setting"] == setting])
        assert summary[setting]["runs"] == 2
        assert summary[setting]["pool"] == int(setting[-1]) and "pool_mean" not in summary[setting]
        assert summary[setting]["accuracy_test_mean"] == pytest.approx(test.mean())
        assert summary[setting]["accuracy_test_std"] == pytest.approx(test.std(ddof=1))


@pytest.mark.slow
def test_a_sweep_started_again_runs_only_what_did_not_finish(finished_sweep, monkeypatch):
    out, rows = finished_sweep
    (run_dir(out, "pool_3", 1) / sweep.ROWS).unlink()  # as if the sweep was killed during that run
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed_*/best.keras")}
    trained = []
    real_run_job = sweep.run_job
    monkeypatch.setattr(sweep, "run_job", lambda job, **kw: trained.append(job.run_dir) or real_run_job(job, **kw))
    again = Sweep(out, SETTINGS, seeds=[0, 1]).run()
    assert trained == [run_dir(out, "pool_3", 1)]
    assert [row["setting"] for row in again] == [row["setting"] for row in rows]
    for path, mtime in before.items():
        assert (path.stat().st_mtime_ns == mtime) == (path.parent != run_dir(out, "pool_3", 1))


def test_sweep_settings_and_executor_are_checked_before_any_run(tmp_path):
    with pytest.raises(ConfigError, match="unique"):
        Sweep(tmp_path, [SETTINGS[0], SETTINGS[0]], seeds=[0])
    with pytest.raises(ConfigError, match="local, ray"):
        Sweep(tmp_path, SETTINGS, seeds=[0]).run(executor="slurm")
    missing = tmp_path / "no_tulips_here"
    real = resolve("tulips1_pixelrnn").replace(data={"manual_dir": str(missing)})
    with pytest.raises(FileNotFoundError, match="no_tulips_here"):
        Sweep(tmp_path / "out", [SETTINGS[0], Setting("tulips", real)], seeds=[0]).run()
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.slow
def test_ray_executor_runs_each_run_as_a_task_and_gathers_the_rows(tmp_path):
    pytest.importorskip("ray", reason="Ray is the [cluster] extra (and in [test])")
    settings = [Setting("pixelrnn", tiny(), evaluate=two_conditions), Setting("srnn", tiny(arch="srnn"), evaluate=two_conditions)]
    rows = Sweep(tmp_path, settings, seeds=[0], group_by=("setting", "condition")).run(executor="ray", resources={"num_cpus": 1})
    results = read_csv(tmp_path / sweep.RESULTS)
    assert [(r["setting"], r["condition"]) for r in results] == [
        ("pixelrnn", "as_trained"), ("pixelrnn", "complement"), ("srnn", "as_trained"), ("srnn", "complement")
    ]
    for row in results:
        metrics = json.loads((run_dir(tmp_path, row["setting"], 0) / "metrics.json").read_text())
        expected = metrics["accuracy"]["test"] if row["condition"] == "as_trained" else 1 - metrics["accuracy"]["test"]
        assert row["accuracy"] == pytest.approx(expected)
    assert len(read_csv(tmp_path / sweep.SUMMARY)) == 4 and len(rows) == 4


# ---------------------------------------------------------------- run-config names and overrides
def test_generated_names_take_the_datasets_pixelrnn_config_with_the_model_replaced():
    config = resolve("cambridge_mgu_2layer_float")
    base = json.loads((run_config.configs_dir() / "cambridge_pixelrnn.json").read_text())
    assert (config.model.arch, config.model.cnn_layers, config.model.binary) == ("mgu", 2, False)
    assert config.data.dataset == base["data"]["dataset"] and config.data.translate == base["data"]["translate"]
    assert (config.train.epochs, config.train.batch_size) == (base["train"]["epochs"], base["train"]["batch_size"])
    assert config.model.decoder == base["model"]["decoder"]
    # a shipped file of the same name wins over the generated one
    shipped = json.loads((run_config.configs_dir() / "tulips1_pixelrnn_2layer.json").read_text())
    assert resolve("tulips1_pixelrnn_2layer").train.epochs == shipped["train"]["epochs"]
    # 3 data sets x (6 archs x 2 depths x 2 precisions + raw, diff x 2 precisions)
    assert len(run_config.generated_configs()) == 3 * 28
    assert resolve("synthetic_raw").model.arch == "raw"


def test_unknown_config_name_suggests_the_nearest():
    with pytest.raises(FileNotFoundError, match="cambridge_mgu_2layer"):
        resolve("cambridge_mgu_2layr")


def test_overrides_parse_sections_json_values_and_reject_unknown_keys():
    assert parse_overrides(["model.readout_pool=4", "epochs=3", "model.output_threshold=null", "data.protocol=standard"]) == {
        "model": {"readout_pool": 4, "output_threshold": None},
        "train": {"epochs": 3},
        "data": {"protocol": "standard"},
    }
    config = resolve("default").override(parse_overrides(["model.forget_threshold=true", "gate_noise_stddev=0.25"]))
    assert config.model.forget_threshold is True and config.model.gate_noise_stddev == 0.25
    with pytest.raises(ConfigError, match="did you mean 'model.readout_pool'|Did you mean 'model.readout_pool'"):
        parse_overrides(["model.redout_pool=4"])
    with pytest.raises(ConfigError, match="several sections"):
        parse_overrides(["seed=1"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(ConfigError, match="Unknown config section 'modle'"):
        parse_overrides(["modle.arch=mgu"])
