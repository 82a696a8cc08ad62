"""Emulated frames per second of the SCAMP-5 emulator on this machine.

Compiles a 1-layer binary PixelRNN (random weights) into a SCAMP-5 program and prints one table:
instructions and estimated chip time per frame, then emulated frames per second at batch 1, 16
and 64 (independent sensors emulated at once): the exact program with noise off and with the
SCAMP-5 noise preset, and the program calibrated for the preset's drift with the preset.
The first call of each configuration traces the program and compiles its kernels; it is timed
separately and left out of the throughput.

    python benchmarks/bench_emulator.py [--frames 16] [--batches 1 16 64] [--no-jit] [--cnn-layers 1] [--repeats 3]
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import pixelrnn_tf  # noqa: E402
import sensor  # noqa: E402
from pixelrnn_tf._keras import tf  # noqa: E402


def measure(program, batch, frames, noise, jit):
    emulator = sensor.Emulator(program, sensor.Scamp5(), noise=noise, jit=jit)
    clips = np.random.default_rng(0).standard_normal((batch, program.window, 64, 64, 1)).astype("float32")
    start = time.perf_counter()
    emulator.run(clips)  # trace
    first = time.perf_counter() - start
    clips = np.random.default_rng(1).standard_normal((batch, frames, 64, 64, 1)).astype("float32")
    result = emulator.run(clips)
    return result.frames_per_second, first


# The authors' SCAMP-5d frame loop (computational-imaging/PixelRNN, 00_pixelrnn_load_im/src/
# pixelrnn.cpp, commit 7001fbd4, lines 270-1064: the "Full Timer" region that measures their
# 3.5 ms), counted by hand: instruction words (ICW) and kernel launches per step, and library calls
# (56 load_pattern, 50 flood, 15 load_rect, 55 load_in). The two HALF_SCALE down-samples (lines
# 658-659) are 12,072 of the words and 1,038 of the launches. No readout in the timed region
# (img_output = 2).
AUTHORS_FRAME_LOOP = {"words": 14_875, "kernels": 1_376, "calls": 176, "readout_bytes": 0}
AUTHORS_MEASURED_MS = 3.5  # So et al. 2024, section 5: "roughly 3.5 ms" per frame on SCAMP-5


def print_chip_time(program, config):
    """The cost model's terms for our compiled program and for the authors' frame loop."""
    kernels, calls = program.kernels_per_frame()
    ours = program.chip_time(config)
    loop = AUTHORS_FRAME_LOOP
    theirs = {
        "instructions": config.seconds(loop["words"]),
        "kernel launches and calls": (loop["kernels"] + loop["calls"]) * config.call_s,
        "readout link": loop["readout_bytes"] / config.link_bytes_per_s,
    }
    theirs["total"] = sum(theirs.values())
    print(f"estimated chip time per frame, ms (clock {config.clock_hz / 1e6:g} MHz, {1e6 * config.call_s:g} us per "
          f"kernel launch or library call, link {config.link_bytes_per_s / 1e6:g} MB/s):")
    print(f"{'term':>28} {'this program':>13} {'authors loop':>13}")
    print(f"{'words':>28} {program.words_per_frame(config):>13,.0f} {loop['words']:>13,}")
    print(f"{'kernels + calls':>28} {kernels + calls:>13,.0f} {loop['kernels'] + loop['calls']:>13,}")
    for term in ours:
        print(f"{term:>28} {1e3 * ours[term]:>13.3f} {1e3 * theirs[term]:>13.3f}")
    print(f"{'measured (paper)':>28} {'':>13} {AUTHORS_MEASURED_MS:>13.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (a multiple of K = 16)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--cnn-layers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration; the best is printed (the "
                        "machine is shared: single runs vary by up to 40%%)")
    parser.add_argument("--no-jit", dest="jit", action="store_false", help="run the write kernels as plain TensorFlow ops instead of fused XLA kernels")
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(0)
    model = pixelrnn_tf.build_model(arch="pixelrnn", cnn_layers=args.cnn_layers)
    program = sensor.compile(model)
    config = sensor.Scamp5()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"GPU: {bool(tf.config.list_physical_devices('GPU'))}, TF {tf.__version__}, XLA: {args.jit}")
    print(f"program: PixelRNN, {args.cnn_layers}-layer CNN; {program.instructions_per_frame():,.0f} instructions "
          f"and {program.words_per_frame(config):,.0f} instruction words per frame; estimated chip time "
          f"{1e3 * program.seconds_per_frame(config):.3f} ms per frame")
    print_chip_time(program, config)
    calibrated = sensor.compile(model, drift="scamp5")
    print(f"calibrated for the SCAMP-5 drift (what `pixelrnn emulate --noise scamp5` runs): "
          f"{calibrated.instructions_per_frame():,.0f} instructions per frame")
    print(f"{'batch':>6} {'noise':>8} {'program':>11} {'frames/s':>10} {'best of':>8} {'first call s':>13}")
    for noise, name, compiled in (("none", "exact", program), ("scamp5", "exact", program), ("scamp5", "calibrated", calibrated)):
        for batch in args.batches:
            runs = [measure(compiled, batch, args.frames, noise, args.jit) for _ in range(args.repeats)]
            fps, first = max(r[0] for r in runs), runs[0][1]
            print(f"{batch:>6} {noise:>8} {name:>11} {fps:>10.1f} {args.repeats:>8} {first:>13.1f}", flush=True)


if __name__ == "__main__":
    main()
