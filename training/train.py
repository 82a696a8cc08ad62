"""Train and evaluate in-pixel models with `model.fit`, writing everything to a run directory
(its files: training.runs)."""

import csv
import os
import shutil

import numpy as np

import pixelrnn_tf
import sensor
from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError
from training import plots, runs
from training.run_config import resolve
from training.runs import RunDirectory


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
    run = RunDirectory(out_dir)
    run.start(config)

    tf.keras.utils.set_random_seed(config.train.seed)
    splits, class_names = run.splits(config)
    strategy = make_strategy(config.train.strategy)
    with strategy.scope():
        model = pixelrnn_tf.build_model(config.model, num_classes=len(class_names))
        compile_model(model, config.train.learning_rate)

    callbacks = [
        tf.keras.callbacks.BackupAndRestore(str(run.file(runs.BACKUP))),
        tf.keras.callbacks.ModelCheckpoint(
            str(run.file(runs.BEST)), monitor="val_accuracy", mode="max", save_best_only=True
        ),
        tf.keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=config.train.lr_factor, patience=config.train.lr_patience
        ),
        tf.keras.callbacks.CSVLogger(str(run.file(runs.HISTORY)), append=True),
        tf.keras.callbacks.TensorBoard(str(run.file(runs.LOGS)), histogram_freq=0, write_graph=False),
        *extra_callbacks,
    ]
    model.fit(
        splits["train"],
        validation_data=splits["val"],
        epochs=config.train.epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    return finish_run(run, splits, class_names)


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


def finish_run(run, splits, class_names):
    """Evaluate the best checkpoint on every split, write metrics.json and the plots."""
    model = run.load_model()
    accuracy = {}
    for split in runs.SPLITS:
        labels, predictions = predict_labels(model, splits[split])
        accuracy[split] = float(np.mean(labels == predictions))
        if split == "test":
            matrix = plots.confusion_matrix(labels, predictions, len(class_names))
    figures = pixelrnn_tf.account(model, sensor.Scamp5())
    metrics = {
        "model": model.name,
        "accuracy": accuracy,
        "test_clips": int(matrix.sum()),
        "class_names": list(class_names),
        "confusion_matrix": matrix.tolist(),
        **figures.to_dict(),
    }
    run.write_json(runs.METRICS, metrics)
    title = f"{model.name}: test accuracy {accuracy['test']:.1%}"
    plots.plot_confusion(matrix, class_names, run.file(runs.CONFUSION), title)
    plots.plot_curves(_read_history(run.file(runs.HISTORY)), run.file(runs.CURVES), model.name)
    shutil.rmtree(run.file(runs.BACKUP), ignore_errors=True)  # finished: nothing left to resume
    return metrics
