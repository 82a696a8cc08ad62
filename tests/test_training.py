"""Training and evaluation end to end on tiny synthetic runs: the run directory, resuming an
interrupted run, evaluation with noise, the mirrored strategy, the CLI and bad input."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import pixelrnn_tf
from pixelrnn_tf._keras import tf
from pixelrnn_cli.app import app
from pixelrnn_tf.config import ConfigError
from training import evaluate, run_config, train

TINY = {
    "model": {"arch": "pixelrnn", "decoder": "reference"},
    "data": {"dataset": "synthetic_gestures", "train_clips": 27, "val_clips": 9, "test_clips": 9},
    "train": {"epochs": 2, "batch_size": 9, "learning_rate": 0.003},
}


def tiny(**sections):
    config = run_config.RunConfig.from_dict(json.loads(json.dumps(TINY)))
    return config.replace(**sections)


@pytest.mark.slow
def test_run_directory_holds_model_metrics_and_plots(tmp_path):
    metrics = train.train(tiny(), tmp_path, verbose=0)
    for name in ("config.json", "best.keras", "metrics.json", "history.csv", "confusion.png", "curves.png"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "backup").exists()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["in_pixel_parameters"] == 501 and saved["readout_values_per_window"] == 4096
    assert saved["bandwidth_reduction_vs_raw"] == 256 and saved["test_clips"] == 9
    assert np.sum(saved["confusion_matrix"]) == 9
    # the reported test accuracy is what the saved model really scores
    from training import data

    splits, _ = data.load_splits(tiny().data, tiny().model, 9)
    model = pixelrnn_tf.load_model(tmp_path / "best.keras")
    labels, predictions = train.predict_labels(model, splits["test"])
    assert saved["accuracy"]["test"] == pytest.approx(np.mean(labels == predictions))
    assert np.trace(saved["confusion_matrix"]) == int(np.sum(labels == predictions))
    assert run_config.RunConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == tiny()


class Interrupt(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption after the second epoch")


@pytest.mark.slow
def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    config = tiny(train={"epochs": 3})
    with pytest.raises(KeyboardInterrupt):
        train.train(config, tmp_path, verbose=0, extra_callbacks=[Interrupt()])
    assert (tmp_path / "backup").exists()
    train.train(config, tmp_path, verbose=0)
    with open(tmp_path / "history.csv") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == [0, 1, 2]  # epochs 0-1 from the first attempt, only epoch 2 from the second


@pytest.mark.slow
def test_evaluate_with_and_without_noise(tmp_path):
    config = tiny(model={"cnn_noise_stddev": 0.6, "gate_noise_stddev": 0.6, "readout_noise_stddev": 1.0}, train={"epochs": 1})
    train.train(config, tmp_path, verbose=0)
    clean = evaluate.evaluate(tmp_path, split="test")
    assert clean["repeats"] == 1 and clean["std"] == 0
    assert clean["accuracy"] == json.loads((tmp_path / "metrics.json").read_text())["accuracy"]["test"]
    noisy = evaluate.evaluate(tmp_path, split="test", noise=True, repeats=3, seed=4)
    assert noisy["repeats"] == 3 and noisy["noise"]
    assert evaluate.evaluate(tmp_path, split="test", noise=True, repeats=3, seed=4) == noisy  # seeded: reproducible
    # the trained noise really is on at inference: two passes over the same clips differ
    from training.runs import RunDirectory

    run = RunDirectory(tmp_path)
    clips = np.random.default_rng(0).standard_normal((2, 16, 64, 64, 1)).astype("float32")
    sensor = pixelrnn_tf.sensor_model(evaluate.model_with_noise(run, run.read_config()))
    assert not np.array_equal(sensor(clips, training=False).numpy(), sensor(clips, training=False).numpy())
    huge = evaluate.evaluate(tmp_path, split="test", noise_stddev=1e4, repeats=2)
    assert huge["accuracy"] <= 0.5  # noise that swamps the signal leaves guesses


def test_config_errors_come_before_training(tmp_path):
    with pytest.raises(ConfigError, match="'epoch' \\(did you mean 'epochs'\\?\\)"):
        run_config.RunConfig.from_dict({"train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="Unknown dataset 'mnist'"):
        run_config.RunConfig.from_dict({"data": {"dataset": "mnist"}})
    with pytest.raises(ConfigError, match="multiple of window"):
        run_config.RunConfig.from_dict({"model": {"frames": 24}})
    with pytest.raises(ConfigError, match="must be >= 0"):
        run_config.RunConfig.from_dict({"model": {"readout_noise_stddev": -0.5}})
    with pytest.raises(ConfigError, match="Unknown section"):
        run_config.RunConfig.from_dict({"optimizer": {}})
    with pytest.raises(FileNotFoundError, match="No run config"):
        run_config.resolve(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("name", run_config.bundled_configs())
def test_bundled_configs_build_the_model_and_data_their_names_say(name):
    """<dataset>_<arch>[_2layer][_float|_noise]: the config trains what its name promises."""
    config = run_config.resolve(name)
    model = pixelrnn_tf.build_model(config.model)
    dataset = {"cambridge": "cambridge_hand_gesture", "tulips1": "tulips1"}.get(name.split("_")[0], "synthetic_gestures")
    assert config.data.dataset == dataset
    arch = "pixelrnn" if name == "default" else name.split("_")[1]
    precision = "float" if name.endswith("_float") else "binary"
    assert config.model.arch == arch and model.name.startswith(f"{arch}_{precision}")
    assert (config.model.cnn_layers == 2) == ("_2layer" in name)
    assert (config.model.gate_noise_stddev > 0) == name.endswith("_noise")
    classes = {"cambridge_hand_gesture": 9, "tulips1": 4, "synthetic_gestures": 9}[dataset]
    assert model.output_shape[-1] == config.model.num_classes == classes


def test_missing_dataset_folder_names_folder_and_layout(tmp_path):
    config = run_config.resolve("cambridge_pixelrnn").replace(data={"manual_dir": str(tmp_path / "nowhere"), "data_dir": str(tmp_path / "tfds")})
    with pytest.raises(FileNotFoundError) as error:
        train.train(config, tmp_path / "run", verbose=0)
    message = str(error.value)
    assert "nowhere" in message and "Set1" in message


MIRRORED = """
import pixelrnn_tf, json, sys
from pixelrnn_tf._keras import tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from training import train, run_config
config = run_config.RunConfig.from_dict(json.loads(sys.argv[1]))
strategy = train.make_strategy("mirrored")
print("replicas", strategy.num_replicas_in_sync)
metrics = train.train(config, sys.argv[2], verbose=0)
print("accuracy", metrics["accuracy"]["test"])
"""


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpus(tmp_path):
    config = json.loads(json.dumps(TINY))
    config["train"].update(epochs=1, strategy="mirrored", batch_size=6)
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, json.dumps(config), str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2" in result.stdout
    assert (tmp_path / "best.keras").is_file()


runner = CliRunner()


@pytest.mark.slow
def test_cli_train_and_evaluate(tmp_path):
    config_file = tmp_path / "tiny.json"
    config_file.write_text(json.dumps(tiny(train={"epochs": 1}).to_dict()))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config_file), "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and "501" in result.output and "256x less than RAW" in result.output
    result = runner.invoke(app, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    assert "test" in result.output and "off" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["evaluate", "no/such/run"], "not a finished run directory"),
        (["train", "no_such_config"], "No run config"),
        (["train", "--strategy", "tpu"], "Unknown strategy 'tpu'"),
        (["train", "--dataset", "imagenet"], "Unknown dataset 'imagenet'"),
    ],
)
def test_cli_training_user_errors(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
