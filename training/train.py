"""Train and evaluate in-pixel models with `model.fit`, writing everything to a run directory.

A run directory holds:
    config.json      the resolved run configuration
    best.keras       the model with the best validation accuracy
    metrics.json     accuracy per split and the model's sensor cost
    history.csv      per-epoch metrics; logs/ TensorBoard; backup/ state to resume an interrupted run
    confusion.png    test confusion matrix; curves.png training curves
"""

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np

import pixelrnn_tf
from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError
from pixelrnn_tf.files import write_text_atomic
from training import data, plots
from training.run_config import resolve

SPLITS = ("train", "val", "test")


def make_strategy(name):
    if name == "mirrored":
        # All local GPUs, or else every logical CPU device (MirroredStrategy alone would take CPU:0).
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy(None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")])
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("--strategy multiworker reads the cluster from TF_CONFIG, which is not set.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def compile_model(model, learning_rate):
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def train(config=None, out_dir="runs/default", verbose=1, extra_callbacks=()):
    """Train the model of `config` (None: the default synthetic run; a bundled name; a JSON path;
    or a RunConfig) and write the run directory. Returns the metrics dict."""
    config = resolve(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "config.json"
    if previous.is_file() and json.loads(previous.read_text()) != config.to_dict() and (out / "backup").exists():
        raise ConfigError(
            f"{out} holds an interrupted run with a different config; resume it with the same config "
            "or choose another --out."
        )
    write_text_atomic(previous, json.dumps(config.to_dict(), indent=2))

    tf.keras.utils.set_random_seed(config.train.seed)
    splits, class_names = data.load_splits(config.data, config.model, config.train.batch_size)
    strategy = make_strategy(config.train.strategy)
    with strategy.scope():
        model = pixelrnn_tf.build_model(config.model, num_classes=len(class_names))
        compile_model(model, config.train.learning_rate)

    callbacks = [
        tf.keras.callbacks.BackupAndRestore(str(out / "backup")),
        tf.keras.callbacks.ModelCheckpoint(
            str(out / "best.keras"), monitor="val_accuracy", mode="max", save_best_only=True
        ),
        tf.keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.train.lr_factor, patience=config.train.lr_patience
        ),
        tf.keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        tf.keras.callbacks.TensorBoard(str(out / "logs"), histogram_freq=0, write_graph=False),
        *extra_callbacks,
    ]
    model.fit(
        splits["train"],
        validation_data=splits["val"],
        epochs=config.train.epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    return finish_run(out, splits, class_names, verbose)


def _read_history(path):
    history = {}
    if path.is_file():
        with open(path) as handle:
            for row in csv.DictReader(handle):
                for key, value in row.items():
                    if key != "epoch":
                        history.setdefault(key, []).append(float(value))
    return history


def predict_labels(model, dataset):
    labels, predictions = [], []
    for clips, batch_labels in dataset:
        predictions.append(np.argmax(model(clips, training=False).numpy(), axis=-1))
        labels.append(batch_labels.numpy())
    return np.concatenate(labels), np.concatenate(predictions)


def finish_run(out, splits, class_names, verbose=1):
    """Evaluate the best checkpoint on every split, write metrics.json and the plots."""
    model = pixelrnn_tf.load_model(out / "best.keras")
    accuracy = {}
    for split in SPLITS:
        labels, predictions = predict_labels(model, splits[split])
        accuracy[split] = float(np.mean(labels == predictions))
        if split == "test":
            matrix = plots.confusion_matrix(labels, predictions, len(class_names))
    figures = pixelrnn_tf.account(model)
    metrics = {
        "model": model.name,
        "accuracy": accuracy,
        "test_clips": int(matrix.sum()),
        "class_names": list(class_names),
        "confusion_matrix": matrix.tolist(),
        **figures.to_dict(),
    }
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    plots.plot_confusion(matrix, class_names, out / "confusion.png", f"{model.name}: test accuracy {accuracy['test']:.1%}")
    plots.plot_curves(_read_history(out / "history.csv"), out / "curves.png", model.name)
    shutil.rmtree(out / "backup", ignore_errors=True)  # finished: nothing left to resume
    return metrics
