"""Training and inference throughput (clips per second) of PixelRNN on this machine.

Prints one table: binary and full-precision PixelRNN at batch 1 and 16, train steps (model.fit) and
inference (model.predict), each with and without XLA (jit_compile), plus the throughput of the
synthetic_gestures input pipeline, so one can see whether the pipeline would bound training.

    python benchmarks/bench_train.py [--steps 20]
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


def measure(binary, batch, jit, steps):
    model = pixelrnn_tf.build_model(binary=binary, decoder="reference")
    model.compile(
        tf.keras.optimizers.Adam(1e-3),
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    x, y = _clips(batch, steps)
    model.fit(x[:batch], y[:batch], batch_size=batch, verbose=0)  # trace and compile
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    train = len(x) / (time.perf_counter() - start)
    model.predict(x[:batch], batch_size=batch, verbose=0)
    start = time.perf_counter()
    model.predict(x, batch_size=batch, verbose=0)
    infer = len(x) / (time.perf_counter() - start)
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
    parser.add_argument("--steps", type=int, default=20, help="batches per measurement")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}")
    print(f"{'model':<10}{'batch':>6}{'XLA':>6}{'train clips/s':>15}{'infer clips/s':>15}")
    for binary in (True, False):
        for batch in (1, 16):
            for jit in (False, True):
                steps = args.steps * (4 if batch == 1 else 1)
                train, infer = measure(binary, batch, jit, steps)
                name = "binary" if binary else "float"
                print(f"{name:<10}{batch:>6}{'on' if jit else 'off':>6}{train:>15.1f}{infer:>15.1f}", flush=True)
    first, cached = pipeline_throughput()
    print(f"synthetic_gestures pipeline: {first:.0f} clips/s first epoch (generation), {cached:.0f} clips/s cached")


if __name__ == "__main__":
    main()
