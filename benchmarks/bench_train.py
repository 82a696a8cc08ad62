"""Training and inference throughput (clips per second) of PixelRNN on this machine.

Prints one table: binary and full-precision PixelRNN at batch 1 and 16, train steps (model.fit) and
inference (model.predict), each with and without XLA (jit_compile), plus the throughput of the
synthetic_gestures input pipeline, so one can see whether the pipeline would bound training.
Each figure is the best of --repeats passes (the machine is shared: single passes vary a lot).

    python benchmarks/bench_train.py [--steps 20] [--models binary float] [--batches 1 16]
                                     [--xla off on] [--repeats 3] [--no-pipeline]

To compare two checkouts, run this script with PYTHONPATH at each in turn (benchmarks/bench_paired.py).
"""

import argparse
import os
import platform
import time

import numpy as np

import pixelrnn_tf
from pixelrnn_tf._keras import tf
from training import data, run_config


def _clips(batch, steps):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * steps, 16, 64, 64, 1)).astype("float32")
    return x, rng.integers(0, 9, batch * steps)


def _best_rate(function, clips, repeats):
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = max(best, clips / (time.perf_counter() - start))
    return best


def measure(binary, batch, jit, steps, repeats=1):
    model = pixelrnn_tf.build_model(binary=binary, decoder="reference")
    model.compile(
        tf.keras.optimizers.Adam(1e-3),
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    x, y = _clips(batch, steps)
    model.fit(x[:batch], y[:batch], batch_size=batch, verbose=0)  # trace and compile
    train = _best_rate(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0), len(x), repeats)
    model.predict(x[:batch], batch_size=batch, verbose=0)
    infer = _best_rate(lambda: model.predict(x, batch_size=batch, verbose=0), len(x), repeats)
    return train, infer


def pipeline_throughput(clips=540):
    config = run_config.resolve("default").replace(data={"train_clips": clips, "val_clips": 9, "test_clips": 9})
    start = time.perf_counter()
    splits, _ = data.load_splits(config.data, config.model, 16)
    for _ in splits["train"]:  # first pass: generate and fill the cache
        pass
    first = clips / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in splits["train"]:  # later epochs read the cache
        pass
    return first, clips / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="batches per measurement (x4 at batch 1)")
    parser.add_argument("--models", nargs="+", default=["binary", "float"], choices=["binary", "float"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--xla", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--repeats", type=int, default=1, help="passes per figure; the best is printed")
    parser.add_argument("--no-pipeline", dest="pipeline", action="store_false", help="skip the input-pipeline figure")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}")
    print(f"{'model':<10}{'batch':>6}{'XLA':>6}{'train clips/s':>15}{'infer clips/s':>15}")
    for name in args.models:
        for batch in args.batches:
            for xla in args.xla:
                steps = args.steps * (4 if batch == 1 else 1)
                train, infer = measure(name == "binary", batch, xla == "on", steps, args.repeats)
                print(f"{name:<10}{batch:>6}{xla:>6}{train:>15.1f}{infer:>15.1f}", flush=True)
    if args.pipeline:
        first, cached = pipeline_throughput()
        print(f"synthetic_gestures pipeline: {first:.0f} clips/s first epoch (generation), {cached:.0f} clips/s cached")


if __name__ == "__main__":
    main()
