"""Throughput of two checkouts of this package, measured alternately in one run.

Runs a benchmark for the OLD and the NEW checkout in turn, each in its own process with
PYTHONPATH at that checkout (old, new, old, new, ...), and prints every pair's figures, the
ratio new/old per pair and configuration, and the median ratio. On a shared machine single runs
vary by tens of percent; alternating spreads the load of others over both sides.

    python benchmarks/bench_paired.py OLD NEW [--bench emulator|train] [--pairs 3] [-- benchmark arguments]

--bench emulator runs each checkout's own benchmarks/bench_emulator.py (emulated frames/s).
--bench train runs the NEW checkout's benchmarks/bench_train.py against both packages (train
clips/s from model.fit), so that both sides take the same options even where the old script had fewer.

e.g. python benchmarks/bench_paired.py /work/old . --pairs 3 -- --batches 1 16 --repeats 2
     python benchmarks/bench_paired.py /work/old . --bench train -- --models binary --xla off --no-pipeline
"""

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

DEFAULT_ARGS = {
    "emulator": ["--batches", "1", "16", "--repeats", "2"],
    "train": ["--models", "binary", "--batches", "1", "16", "--xla", "off", "--repeats", "2", "--no-pipeline"],
}


def _emulator_row(fields):
    """bench_emulator.py: batch noise program frames/s first-call ..."""
    if len(fields) == 6 and fields[0].isdigit():
        return (fields[0], fields[1], fields[2]), float(fields[3])
    return None


def _train_row(fields):
    """bench_train.py: model batch XLA train-clips/s infer-clips/s"""
    if len(fields) == 5 and fields[1].isdigit():
        return (fields[0], fields[1], fields[2]), float(fields[3])
    return None


BENCHES = {"emulator": ("bench_emulator.py", _emulator_row, ("batch", "noise", "program"), "frames/s"),
           "train": ("bench_train.py", _train_row, ("model", "batch", "XLA"), "train clips/s")}


def measure(checkout, script, parse_row, bench_args):
    """{configuration: figure} from one run of `script` with the package imported from `checkout`."""
    checkout = Path(checkout).resolve()
    env = dict(os.environ, PYTHONPATH=str(checkout))
    command = [sys.executable, str(script)] + bench_args
    output = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=True).stdout
    rows = dict(row for row in map(parse_row, (line.split() for line in output.splitlines())) if row)
    if not rows:
        raise RuntimeError(f"No results in the output of {' '.join(command)}:\n{output}")
    return rows


def print_table(pairs, columns, unit):
    header = " | ".join(f"pair {n + 1} old, new (ratio)" for n in range(len(pairs)))
    print(f"{unit}, old -> new:")
    print(f"| {' | '.join(columns)} | {header} | median ratio |")
    print("|" + "---|" * (len(columns) + len(pairs) + 1))
    for key in pairs[0][0]:
        ratios = [new[key] / old[key] for old, new in pairs]
        cells = " | ".join(f"{old[key]:.1f}, {new[key]:.1f} ({r:.3f})" for (old, new), r in zip(pairs, ratios))
        print(f"| {' | '.join(key)} | {cells} | {statistics.median(ratios):.3f} |")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    bench_args = argv[argv.index("--") + 1 :] if "--" in argv else None
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="checkout measured first in every pair")
    parser.add_argument("new")
    parser.add_argument("--bench", choices=sorted(BENCHES), default="emulator")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args(argv)
    script_name, parse_row, columns, unit = BENCHES[args.bench]
    bench_args = DEFAULT_ARGS[args.bench] if bench_args is None else bench_args
    pairs = []
    for n in range(args.pairs):
        figures = []
        for checkout in (args.old, args.new):
            owner = checkout if args.bench == "emulator" else args.new
            figures.append(measure(checkout, Path(owner).resolve() / "benchmarks" / script_name, parse_row, bench_args))
        pairs.append(tuple(figures))
        old, new = figures
        print(f"pair {n + 1}: " + ", ".join(f"{'/'.join(k)} {old[k]:.1f} -> {new[k]:.1f}" for k in old), flush=True)
    print()
    print_table(pairs, columns, unit)


if __name__ == "__main__":
    main()
