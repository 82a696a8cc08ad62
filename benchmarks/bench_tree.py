"""A tree network against one model of the same per-node size, on drifting gratings.

Trains, with model.fit, (a) one in-pixel model on all 8 classes (2 scales x 4 orientations) of
training.synthetic_orientations and (b) a tree (pixelrnn_tf.tree) whose root tells the scale
from the first window and whose children tell the orientation at their scale from the second;
every node is the same model as (a) (CNN, cell, window, readout), with fewer outputs. Prints test accuracy per seed for both (the tree's as the sensor runs it: the root's
argmax routes, one child classifies), the tree emulated on SCAMP-5 (noise off) on test clips, and
the tree's cost per node: instructions and chip time per frame and the weight reload.

    python benchmarks/bench_tree.py [--train 768] [--test 256] [--epochs 20] [--seeds 0 1 2 3 4]
                                   [--readout-pool 32] [--decoder reference|linear] [--lr 0.01]
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
from pixelrnn_tf.tree import build_tree  # noqa: E402
from sensor.tree import run_tree  # noqa: E402
from training import synthetic_orientations as task  # noqa: E402


def node_config(args):
    return dict(
        arch=args.arch, cnn_layers=1, frames=2 * args.window, window=args.window, readout_pool=args.readout_pool, decoder=args.decoder
    )


def train(model, clips, labels, args):
    model.compile(tf.keras.optimizers.Adam(args.lr), tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    model.fit(clips, labels, epochs=args.epochs, batch_size=16, verbose=0)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=768)
    parser.add_argument("--test", type=int, default=256)
    parser.add_argument("--emulate", type=int, default=64, help="test clips run on the emulated sensor")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--arch", default="pixelrnn")
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--readout-pool", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--decoder", default="reference", help="linear or reference (with BatchNorm)")
    parser.add_argument("--scales", type=int, default=2, help="2 (8 classes, 2 children) or 4 (16 classes, 4 children)")
    args = parser.parse_args(argv)
    frames = 2 * args.window
    train_x, train_y = task.generate(args.train, frames, seed=1, scales=args.scales)
    test_x, test_y = task.generate(args.test, frames, seed=2, scales=args.scales)
    groups, classes = task.groups(args.scales), 4 * args.scales
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores, TF {tf.__version__}; "
          f"{args.train} / {args.test} clips of {classes} classes, {args.epochs} epochs, node: {node_config(args)}")
    print("| seed | one model: test acc | train s | tree (routed): test acc | root routing acc | train s | tree on the emulator: acc, agreement with Keras |")
    print("|---|---|---|---|---|---|---|")
    group_of = np.array([g for c in range(classes) for g, group in enumerate(groups) if c in group])
    for seed in args.seeds:
        tf.keras.utils.set_random_seed(seed)
        single = pixelrnn_tf.build_model(**node_config(args), num_classes=classes)
        single_s = train(single, train_x, train_y, args)
        single_acc = np.mean(np.argmax(single.predict(test_x, verbose=0), -1) == test_y)
        tf.keras.utils.set_random_seed(seed)
        tree = build_tree(groups, **node_config(args))
        tree_s = train(tree, train_x, train_y, args)
        routes, predictions = tree.hard_predict(test_x)
        tree_acc, route_acc = np.mean(predictions == test_y), np.mean(routes == group_of[test_y])
        emulated = run_tree(tree, test_x[: args.emulate], compile_options={"input_white": 5})
        emulated_acc = np.mean(emulated.predictions == test_y[: args.emulate])
        agreement = np.mean(emulated.predictions == predictions[: args.emulate])
        print(f"| {seed} | {single_acc:.1%} | {single_s:.0f} | {tree_acc:.1%} | {route_acc:.1%} | {tree_s:.0f} | "
              f"{emulated_acc:.1%}, {agreement:.1%} |", flush=True)
    print()
    print(emulated.cost.table())
    print(f"\nmean chip time per clip of {frames} frames: tree {emulated.cost.seconds_per_clip * 1e3:.2f} ms; one model "
          f"{frames * sensor.compile(single).chip_time(sensor.Scamp5())['total'] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
