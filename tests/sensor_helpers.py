"""Helpers for the sensor tests: run a few instructions on a small array and read the planes."""

import numpy as np

from pixelrnn_tf._keras import tf
from sensor import ArrayConfig, Emulator, Program

SMALL = ArrayConfig(name="test-4x4", height=4, width=4)


def run(instructions, config=SMALL, frame=None, noise=None, seed=0, **registers):
    """Execute `instructions` once on a batch of one array; registers given as (H, W) planes set
    the initial state. Returns ({register: (H, W) numpy}, readouts list, saturated count)."""
    program = Program({"frame": tuple(("test", i) for i in instructions)})
    emulator = Emulator(program, config, noise=noise, seed=seed)
    state = emulator._initial_state(1)
    for name, plane in registers.items():
        dtype = tf.bool if config.kind(name) == "digital" else tf.float32
        state[name] = tf.constant(np.asarray(plane)[None], dtype)
    if frame is not None:
        frame = np.asarray(frame, np.float32)[None]
    state, readouts, saturated = emulator.execute("frame", state, frame, 0, batch=1)
    planes = {name: np.asarray(value)[0] for name, value in emulator.unpack_state(state, 1).items()}
    return planes, [np.asarray(r)[0] for r in readouts], int(saturated)
