"""A synthetic task for tree networks: drifting gratings at 2 scales and 4 orientations.

Class k = 4 s + o is a sinusoidal grating of scale s (0: fine, a period of 4 to 5 pixels; 1:
coarse, 10 to 13 pixels) at orientation o * 45 degrees, with a random phase, drifting across the
frames at a random speed, under pixel noise and a random contrast. The scales are the two groups
`GROUPS` of a tree: the root tells the scale, each child the orientation at its scale. One 5x5
kernel sees a whole period of a fine grating but only a slanted edge of a coarse one, so the two
scales want different kernels: a single model must share its 16 between them, a tree's children
have 16 each (pixelrnn_tf.tree).

`scales=4` makes the same task with 16 classes in 4 groups (periods 3-4, 5-6, 8-10, 12-15 px).

Frames are in [-1, 1] around 0, so the input binarisation at 0 halves the grating; the generator
is seeded per clip, so a split is the same on every machine.
"""

import numpy as np

NUM_CLASSES = 8
GROUPS = ((0, 1, 2, 3), (4, 5, 6, 7))
PERIODS = ((4.0, 5.0), (10.0, 13.0))
# scales=4 (16 classes, 4 groups): fine to coarse
PERIODS_4 = ((3.0, 3.8), (5.0, 6.2), (8.0, 10.0), (12.5, 15.5))
SIZE = 64


def periods(scales=2):
    if scales not in (2, 4):
        raise ValueError(f"scales must be 2 or 4, got {scales}.")
    return PERIODS if scales == 2 else PERIODS_4


def groups(scales=2):
    """The tree's groups: one per scale, its 4 orientations."""
    return tuple(tuple(range(4 * s, 4 * s + 4)) for s in range(scales))


def orientation_degrees(label):
    return 45.0 * (int(label) % 4)


def generate(num_clips, frames=8, seed=0, size=SIZE, scales=2):
    """(clips (N, T, size, size, 1) float32 in [-1, 1], labels (N,) int64), classes balanced;
    scales=4 makes 16 classes (4 scales x 4 orientations)."""
    clips = np.empty((num_clips, frames, size, size, 1), np.float32)
    labels = np.arange(num_clips, dtype=np.int64) % (4 * scales)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    for n in range(num_clips):
        rng = np.random.default_rng([seed, n])
        angle = np.radians(orientation_degrees(labels[n])) + rng.normal(0.0, 0.05)
        period = rng.uniform(*periods(scales)[labels[n] // 4])
        phase = rng.uniform(0.0, 2 * np.pi)
        speed = rng.uniform(0.4, 1.2) * rng.choice([-1.0, 1.0])  # radians per frame
        contrast = rng.uniform(0.25, 0.5)
        across = x * np.cos(angle) + y * np.sin(angle)
        for t in range(frames):
            grating = np.sin(2 * np.pi * across / period + phase + speed * t)
            frame = contrast * grating + rng.normal(0.0, 0.08, (size, size))
            clips[n, t, :, :, 0] = np.clip(frame, -1.0, 1.0)
    return clips, labels
