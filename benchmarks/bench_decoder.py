"""Size and speed of the int8 TFLite Micro decoder that `pixelrnn-export` writes.

Prints one table: for the default 9-class PixelRNN model with the linear and the reference
(Cambridge) decoder, the flash bytes of the flatbuffer, the tensor arena bytes TFLite Micro
measured, and the median TFLite Micro invoke time per readout on this machine, against the
targets (flash < 40 KB, arena < 16 KB). Weights are untrained (the sizes do not depend on them);
representative readouts come from synthetic_gestures clips. Give --run RUN_DIR to measure a
trained run's model instead.

    python benchmarks/bench_decoder.py [--clips 32] [--run RUN_DIR]
"""

import argparse
import os
import platform

import numpy as np

import pixelrnn_tf
from pixelrnn_tf._keras import tf
from export import convert_int8, micro, window_decoder
from training import preprocess, synthetic
from training.runs import RunDirectory

FLASH_TARGET, ARENA_TARGET = 40 * 1024, 16 * 1024


def synthetic_clips(count):
    dataset = synthetic.load_synthetic("train", count, seed=0).map(lambda c, y: preprocess.normalize_grey(c))
    return np.stack([clip.numpy() for clip in dataset])


def measure(model, clips):
    readouts = pixelrnn_tf.sensor_model(model).predict(clips, batch_size=8, verbose=0)
    windows = readouts.reshape((-1,) + readouts.shape[2:])
    flatbuffer = convert_int8(window_decoder(model), windows)
    (scale, zero), _, _, _ = micro.io_quantization(flatbuffer)
    sample = micro.quantize(windows[:1], scale, zero)[0]
    return len(flatbuffer), micro.arena_bytes(flatbuffer, sample), micro.invoke_seconds(flatbuffer, sample)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32, help="synthetic clips for the representative data set")
    parser.add_argument("--run", default=None, help="a run directory: measure its best.keras instead")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")
    clips = synthetic_clips(args.clips)
    if args.run:
        models = {os.path.basename(os.path.normpath(args.run)): RunDirectory(args.run).require_finished().load_model()}
    else:
        models = {name: pixelrnn_tf.build_model(decoder=name, num_classes=9) for name in ("linear", "reference")}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}")
    print(f"{'decoder':<12}{'flash B':>9}{'< 40 KB':>9}{'arena B':>9}{'< 16 KB':>9}{'invoke us':>11}")
    for name, model in models.items():
        flash, arena, seconds = measure(model, clips)
        print(
            f"{name:<12}{flash:>9}{'yes' if flash < FLASH_TARGET else 'NO':>9}{arena:>9}"
            f"{'yes' if arena < ARENA_TARGET else 'NO':>9}{seconds * 1e6:>11.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
