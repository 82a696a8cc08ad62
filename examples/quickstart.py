"""
Title: From synthetic clips to a sensor program and a microcontroller decoder
Author: pixelrnn-tf
Description: Train a binary PixelRNN on synthetic hand gestures, run it on the SCAMP-5 emulator,
    and export its sensor weight tables and int8 TFLite Micro decoder.
Run: python examples/quickstart.py  (about 4 minutes on a laptop CPU)
"""

"""
## Introduction

An in-pixel network runs inside the sensor: per frame a binary CNN turns the 64x64 image into 16
binary maps, tiled into one 64x64 plane; a recurrent cell (PixelRNN) carries them through time;
every K = 16 frames the sensor reads out one 64x64 plane instead of 16 frames. A small decoder
off the sensor classifies the clip.

This example walks the whole way once, with the library's own functions:

1. load `synthetic_gestures`, a procedural data set that needs no download;
2. build and train a binary PixelRNN with `model.fit`, and count what it costs the sensor;
3. compile its in-pixel half into a SCAMP-5 program and emulate it, instruction by instruction;
4. export the weight tables a sensor program loads and an int8 decoder for TFLite Micro.
"""

"""
## Setup

`pixelrnn_tf` must be imported before TensorFlow is used: it selects Keras 2 (tf-keras), which
larq needs.
"""

import os
import tempfile

import numpy as np

import pixelrnn_tf
from pixelrnn_tf._keras import tf

import export
import sensor
from training import data, run_config

# Small enough for a laptop; the `make demo` job trains on 3600 clips for 10 epochs (95% test).
TRAIN_CLIPS = int(os.environ.get("QUICKSTART_TRAIN_CLIPS", 1800))
EPOCHS = int(os.environ.get("QUICKSTART_EPOCHS", 6))
TEST_CLIPS = int(os.environ.get("QUICKSTART_TEST_CLIPS", 90))
OUT = os.environ.get("QUICKSTART_OUT", tempfile.mkdtemp(prefix="pixelrnn-quickstart-"))
tf.keras.utils.set_random_seed(0)

"""
## The data

Nine classes: three hand shapes times three motions. Every clip ends where it began, so no single
frame tells the motion: the model has to remember where the hand went.
"""

config = run_config.resolve("default").replace(
    data={"train_clips": TRAIN_CLIPS, "val_clips": TEST_CLIPS, "test_clips": TEST_CLIPS},
    train={"epochs": EPOCHS},
)
splits, class_names = data.load_splits(config.data, config.model, config.train.batch_size)
print("classes:", ", ".join(class_names))

"""
## The model

`build_model` turns a `ModelConfig` into an ordinary Keras model: clips (batch, T, 64, 64, 1) in,
logits out. Binary weights are learned through the tanh surrogate gradient of the paper.
`pixelrnn_tf.account` says what the model costs a given array, here SCAMP-5.
"""

model = pixelrnn_tf.build_model(config.model, num_classes=len(class_names))
model.compile(
    optimizer=tf.keras.optimizers.Adam(config.train.learning_rate),
    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.fit(splits["train"], validation_data=splits["val"], epochs=config.train.epochs, verbose=2)
_, test_accuracy = model.evaluate(splits["test"], verbose=0)
cost = pixelrnn_tf.account(model, sensor.Scamp5())
print(f"test accuracy {test_accuracy:.1%}")
print(
    f"in-pixel parameters {cost.in_pixel_parameters}, {cost.readout_values_per_window} values read out per "
    f"{cost.window} frames ({cost.bandwidth_reduction_vs_raw:.0f}x less than a camera), "
    f"{cost.memory_bits_per_pixel} bits per macropixel (fits {cost.sensor}: {cost.fits_sensor})"
)

"""
## On the sensor

`sensor.compile` maps the in-pixel half onto SCAMP-5's registers (the paper's mapping: one CNN
channel per processing element of a 4x4 macropixel). Without noise, the emulated readouts equal
the Keras model's readouts exactly. With the SCAMP-5 noise preset they do not, and the decoder
sees what a real chip would give it; the program is then calibrated for the array's drift, and
the recurrent sums get the largest gain that keeps the model's training readouts in range, to
lift them above the noise. A model trained without noise loses accuracy there: the bundled
`synthetic_pixelrnn_noise` config trains with noise and keeps more of it.
"""

clips = np.concatenate([c.numpy() for c, _ in splits["test"]])
labels = np.concatenate([y.numpy() for _, y in splits["test"]])
program = sensor.compile(model, input_white=10)
print(f"{program.instructions_per_frame():,.0f} instructions per frame, "
      f"{1e3 * program.seconds_per_frame(sensor.Scamp5()):.2f} ms on the chip (estimated)")
readout_model = pixelrnn_tf.sensor_model(model)
keras_readouts = readout_model.predict(clips, verbose=0)
train_clips = np.concatenate([c.numpy() for c, _ in splits["train"].take(8)])
gain = sensor.recurrent_gain(readout_model.predict(train_clips, verbose=0), sensor.Scamp5())
noisy_program = sensor.compile(model, input_white=10, recurrent_white=gain, drift="scamp5")
decoder = model.get_layer("decoder")
for noise, compiled in (("none", program), ("scamp5", noisy_program)):
    emulated = sensor.Emulator(compiled, noise=noise).run(clips)
    accuracy = np.mean(np.argmax(decoder(emulated.readouts).numpy(), -1) == labels)
    agreement = np.mean(emulated.readouts == keras_readouts)
    print(f"noise {noise:<7} accuracy {accuracy:.1%}, readouts equal to Keras {agreement:.1%}, "
          f"{emulated.frames_per_second:.0f} emulated frames/s")

"""
## Export

`export_model` writes DIR/sensor (the +-1 kernels in SCAMP-5's load order and the comparator
levels, as JSON, NumPy and a C header) and DIR/decoder (a full-integer int8 `.tflite` checked on
the TFLite Micro interpreter and on LiteRT, with its C array), and a manifest of every file.
"""

result = export.export_model(
    model, OUT, representative={"clips": clips}, evaluation={"clips": clips, "labels": labels}
)
check = result["decoder"]["verification"]
print(f"exported to {OUT}: {', '.join(sorted(result['manifest']['files']))}")
print(f"int8 decoder: {result['decoder']['flash_bytes']} bytes of flash, agrees with float on "
      f"{check['class_agreement']:.1%} of clips; CNN level {result['sensor']['cnn_layers'][0]['threshold']['sensor']}")

"""
## Next

- `pixelrnn train`, `pixelrnn emulate RUN --noise scamp5` and `pixelrnn export RUN --out DIR` do
  the same from the command line, with run directories that resume and record everything.
- `pixelrnn summary --arch convlstm` compares the baselines of the paper's Table 2.
"""
