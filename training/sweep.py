"""Sweeps: many training runs (settings x seeds), resumable, gathered into one results.csv.

    sweep = Sweep(out_dir, settings, seeds=[0, 1])
    rows = sweep.run(progress=callback)        # one run after another in this process
    rows = sweep.run(executor="ray")           # one Ray task per run (pip install pixelrnn-tf[cluster])

Each run is an ordinary run directory, `out_dir/runs/<setting>/seed_<k>`, that every other command
reads (evaluate, emulate, export). A run that finished leaves `sweep_rows.json` in its directory; a
sweep started again skips those runs and resumes an interrupted one from its Keras backup, so an
interrupted sweep continues where it stopped. After every finished run `results.csv` is rewritten
(atomically) with every row so far; `summary.csv` holds the mean and standard deviation per setting.

A setting may name an `evaluate` function, `evaluate(run_dir) -> [dict, ...]`, that measures more
than the training accuracy (noise, the emulator): each dict it returns becomes one row, joined with
the run's own columns. It runs where the run ran, so with Ray it must be importable by the workers
(a module-level function).
"""

import csv
import dataclasses
import io
import json
import math
import statistics
import time
from pathlib import Path
from typing import Callable, Optional

from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError
from pixelrnn_tf.files import write_text_atomic
from training import data
from training.run_config import RunConfig
from training.runs import RunDirectory

ROWS = "sweep_rows.json"
RESULTS = "results.csv"
SUMMARY = "summary.csv"
EXECUTORS = ("local", "ray")
RUN_COLUMNS = (
    "setting",
    "seed",
    "accuracy_train",
    "accuracy_val",
    "accuracy_test",
    "in_pixel_parameters",
    "readout_values_per_window",
    "memory_bits_per_pixel",
    "wall_seconds",
)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One point of a sweep: a name (a folder name), the run config, columns that describe it in
    the tables (e.g. {"arch": "mgu", "cnn_layers": 2}) and an optional evaluate function."""

    name: str
    config: RunConfig
    columns: dict = dataclasses.field(default_factory=dict)
    evaluate: Optional[Callable] = None


@dataclasses.dataclass(frozen=True)
class Job:
    setting: Setting
    seed: int
    run_dir: Path

    @property
    def config(self):
        # Seeds vary the initialisation and the shuffling; every seed sees the same clips.
        return self.setting.config.replace(train={"seed": self.seed})


def run_job(job, verbose=0, callbacks=()):
    """Train (or resume) one run, evaluate it, write its rows next to it; returns the rows."""
    from training import train as training

    # Without it, each model of a sweep adds to Keras' global graph and later runs get slower.
    tf.keras.backend.clear_session()
    start = time.perf_counter()
    run = RunDirectory(job.run_dir)
    metrics = training.train(job.config, job.run_dir, verbose=verbose, extra_callbacks=callbacks)
    base = {
        "setting": job.setting.name,
        **job.setting.columns,
        "seed": job.seed,
        **{f"accuracy_{split}": metrics["accuracy"][split] for split in ("train", "val", "test")},
        "in_pixel_parameters": metrics["in_pixel_parameters"],
        "readout_values_per_window": metrics["readout_values_per_window"],
        "memory_bits_per_pixel": metrics["memory_bits_per_pixel"],
    }
    extra = job.setting.evaluate(job.run_dir) if job.setting.evaluate else [{}]
    wall = time.perf_counter() - start
    rows = [{**base, **row, "wall_seconds": round(wall, 1)} for row in extra]
    run.write_json(ROWS, {"config": job.config.to_dict(), "rows": rows})
    return rows


def finished_rows(job):
    """The rows a finished run left, or None when the run has to (re)start: never started,
    interrupted, or trained with another config than the sweep's."""
    path = Path(job.run_dir) / ROWS
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    return saved["rows"] if saved["config"] == job.config.to_dict() else None


class Sweep:
    """`settings` x `seeds` runs under `out_dir` (see the module docstring)."""

    def __init__(self, out_dir, settings, seeds, group_by=("setting",)):
        names = [setting.name for setting in settings]
        if len(set(names)) != len(names):
            raise ConfigError(f"Setting names must be unique, got {names}.")
        if not settings or not seeds:
            raise ConfigError("A sweep needs at least one setting and one seed.")
        self.out_dir = Path(out_dir)
        self.settings = list(settings)
        self.seeds = [int(seed) for seed in seeds]
        self.group_by = tuple(group_by)
        # a setting's describing columns (arch, pool, ...) are constant per setting: carried, not averaged
        self.constant = tuple(dict.fromkeys(key for setting in self.settings for key in setting.columns))

    def jobs(self):
        return [
            Job(setting, seed, self.out_dir / "runs" / setting.name / f"seed_{seed}")
            for setting in self.settings
            for seed in self.seeds
        ]

    def check_data(self):
        """Prepare every data set the sweep reads, once, before any run: a missing data folder
        fails here, not after hours of other runs."""
        for data_config in {setting.config.data for setting in self.settings}:
            data.prepare(data_config)

    def run(self, executor="local", address=None, resources=None, progress=None, verbose=0):
        """Every run that has not finished, then results.csv and summary.csv; returns all rows.
        progress(done, total, text) is called as runs finish."""
        if executor not in EXECUTORS:
            raise ConfigError(f"Unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}.")
        self.check_data()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        jobs = self.jobs()
        rows = {job.run_dir: finished_rows(job) for job in jobs}
        pending = [job for job in jobs if rows[job.run_dir] is None]
        report = progress or (lambda done, total, text: None)
        report(len(jobs) - len(pending), len(jobs), f"{len(jobs) - len(pending)} runs already finished")

        def finished(job, job_rows):
            rows[job.run_dir] = job_rows
            self.write_tables([row for job_rows in rows.values() if job_rows for row in job_rows])
            done = sum(value is not None for value in rows.values())
            report(done, len(jobs), f"{job.setting.name} seed {job.seed}")

        if executor == "ray":
            from training import ray_executor

            ray_executor.run(pending, finished, address=address, resources=resources)
        else:
            for job in pending:
                done = len(jobs) - sum(value is None for value in rows.values())
                epochs = _EpochProgress(report, done, len(jobs), f"{job.setting.name} seed {job.seed}", job.config.train.epochs)
                finished(job, run_job(job, verbose=verbose, callbacks=[epochs]))
        all_rows = [row for job in jobs for row in rows[job.run_dir]]
        self.write_tables(all_rows)
        return all_rows

    def summarize(self, rows):
        return summarize(rows, self.group_by, constant=self.constant)

    def write_tables(self, rows):
        write_text_atomic(self.out_dir / RESULTS, to_csv(rows))
        write_text_atomic(self.out_dir / SUMMARY, to_csv(self.summarize(rows)))


class _EpochProgress(tf.keras.callbacks.Callback):
    """Reports the epoch of the run under way through the sweep's progress hook."""

    def __init__(self, report, done, total, text, epochs):
        super().__init__()
        self._report, self._done, self._total, self._text, self._epochs = report, done, total, text, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._report(self._done, self._total, f"{self._text}, epoch {epoch + 1}/{self._epochs}")


def summarize(rows, group_by=("setting",), constant=()):
    """Mean and sample standard deviation (over seeds) of every numeric column, per group; the
    `constant` columns (and text columns) are copied from the group's first row."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row.get(key) for key in group_by), []).append(row)
    summary = []
    for key, members in groups.items():
        out = dict(zip(group_by, key))
        first = members[0]
        out.update({k: v for k, v in first.items() if k not in out and k != "seed" and (k in constant or not _is_number(v))})
        out["runs"] = len(members)
        for column, value in first.items():
            if column in out or column == "seed" or not _is_number(value):
                continue
            values = [float(member[column]) for member in members]
            out[f"{column}_mean"] = statistics.fmean(values)
            out[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append(out)
    return summary


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def to_csv(rows):
    columns = []
    for row in rows:
        columns += [column for column in row if column not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_csv(path):
    """The rows of a results or summary file, numbers as floats."""
    with open(path, newline="") as handle:
        return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _number(text):
    try:
        return float(text)
    except ValueError:
        return text
