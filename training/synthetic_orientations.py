"""A synthetic task for tree networks: drifting gratings at 2 scales and 4 orientations.

Class k = 4 s + o is a sinusoidal grating of scale s (0: fine, a period of 4 to 5 pixels; 1:
coarse, 10 to 13 pixels) at orientation o * 45 degrees, with a random phase, drifting across the
frames at a random speed, under pixel noise and a random contrast. The scales are the two groups
`GROUPS` of a tree: the root tells the scale, each child the orientation at its scale. One 5x5
kernel sees a whole period of a fine grating but only a slanted edge of a coarse one, so the two
scales want different kernels: a single model must share its 16 between them, a tree's children
have 16 each (pixelrnn_tf.tree).

Frames are in [-1, 1] around 0, so the input binarisation at 0 halves the grating; the generator
is seeded per clip, so a split is the same on every machine.
"""

import numpy as np

NUM_CLASSES = 8
GROUPS = ((0, 1, 2, 3), (4, 5, 6, 7))
PERIODS = ((4.0, 5.0), (10.0, 13.0))
SIZE = 64


def orientation_degrees(label):
    return 45.0 * (int(label) % 4)


def generate(num_clips, frames=8, seed=0, size=SIZE):
    """(clips (N, T, size, size, 1) float32 in [-1, 1], labels (N,) int64), classes balanced."""
    clips = np.empty((num_clips, frames, size, size, 1), np.float32)
    labels = np.arange(num_clips, dtype=np.int64) % NUM_CLASSES
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    for n in range(num_clips):
        rng = np.random.default_rng([seed, n])
        angle = np.radians(orientation_degrees(labels[n])) + rng.normal(0.0, 0.05)
        period = rng.uniform(*PERIODS[labels[n] // 4])
        phase = rng.uniform(0.0, 2 * np.pi)
        speed = rng.uniform(0.4, 1.2) * rng.choice([-1.0, 1.0])  # radians per frame
        contrast = rng.uniform(0.25, 0.5)
        across = x * np.cos(angle) + y * np.sin(angle)
        for t in range(frames):
            grating = np.sin(2 * np.pi * across / period + phase + speed * t)
            frame = contrast * grating + rng.normal(0.0, 0.08, (size, size))
            clips[n, t, :, :, 0] = np.clip(frame, -1.0, 1.0)
    return clips, labels
