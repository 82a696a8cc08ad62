"""synthetic_gestures: a procedural hand-gesture video data set, the project's default data set.

It needs no download, so the demo, the tests and CI can train and evaluate real models anywhere. The
classes are built like the Cambridge Hand Gesture data set (Kim et al. 2007): 3 hand shapes x 3
motions, class index = 3 * shape + motion. Every clip is 16 greyscale 64x64 frames of one hand-like
silhouette moving over a textured background, under a slowly changing illumination, with fixed-pattern
and temporal sensor noise.

Motions, each starting and ending with the open hand near the centre: a sweep out to the right
and back, the same sweep mirrored to the left, and a grasp (the fingers close and reopen in place).
The sweeps of a shape differ only in their direction. Every clip ends where it began, so the last
frame carries no information about the motion: a model that sees one frame at the end of the
window (the CNN-only control, which reads out the CNN's last frame) can tell the shape but not the
motion, and is held near 1/3 of the motion classes; a model with memory of where the hand has been
(PixelRNN's hidden state) can.

The hand is always brighter than the background around it and, after the ImageNet-style
normalisation that binarises the input at a grey level of about 0.45, stays on the bright side
while most of the background falls on the dark side: a binary in-pixel CNN can see it.

Two ways in:
    generate(num_clips, seed)       numpy arrays, deterministic per clip (clip i depends only on
                                    seed and i, never on num_clips)
    load_synthetic(split)           a tf.data.Dataset of (clip (16, 64, 64, 1) float32, label int32),
                                    generated in memory: no tfds preparation step
and the TFDS builder `SyntheticGestures` ("synthetic_gestures") for tfds.load / as_dataset pipelines.
"""

import dataclasses
import functools

import numpy as np

from pixelrnn_tf._keras import tf  # must precede tensorflow_datasets: it selects Keras 2

import tensorflow_datasets as tfds

SHAPES = ("flat", "v", "fist")
MOTIONS = ("sweep_right", "sweep_left", "grasp")  # out to one side and back; fingers close and reopen
CLASS_NAMES = tuple(f"{shape}_{motion}" for shape in SHAPES for motion in MOTIONS)
NUM_CLASSES = len(CLASS_NAMES)

FRAMES = 16
SIZE = 64
SPLITS = ("train", "validation", "test")
DEFAULT_SPLIT_SIZES = {"train": 1800, "validation": 300, "test": 300}

# Hand geometry in "hand units": one unit is _HAND_UNIT pixels of a 64x64 frame at hand scale 1.
# x right, y down, fingers pointing up (-y). Every shape is one palm ellipse plus _CAPSULES capsules
# (finger segments; a capsule with A == B is a disc, a knuckle), so the renderer is one vectorised
# expression for all shapes. An unused capsule gets a hugely negative radius: it is never inside.
_HAND_UNIT = 0.9  # hands 20-28 px tall, 19-24 px wide at scale 1
_CAPSULES = 5
_UNUSED = (0.0, 0.0, 0.0, 0.0, -1e4)
# palm: (cx, cy, rx, ry); capsules: (ax, ay, bx, by, radius)
_GEOMETRY = {
    "flat": (
        (0.0, 4.0, 9.0, 8.0),
        (
            (-6.6, -1.0, -7.9, -13.5, 2.0),  # index
            (-2.2, -1.0, -2.6, -16.5, 2.0),  # middle
            (2.2, -1.0, 2.6, -15.5, 2.0),  # ring
            (6.6, -1.0, 7.9, -12.0, 2.0),  # little
            (-7.0, 5.0, -14.0, -3.0, 2.3),  # thumb
        ),
    ),
    "v": (
        (0.0, 5.0, 7.5, 7.5),
        (
            (-2.5, -1.0, -8.5, -15.5, 2.2),  # index
            (2.5, -1.0, 8.5, -15.5, 2.2),  # middle
            (-6.0, 6.0, -2.0, 2.0, 2.4),  # thumb folded over the palm
            _UNUSED,
            _UNUSED,
        ),
    ),
    "fist": (
        (0.0, 2.0, 10.0, 9.0),
        (
            (-6.0, -6.5, -6.0, -6.5, 3.2),  # knuckles
            (-2.0, -6.5, -2.0, -6.5, 3.2),
            (2.0, -6.5, 2.0, -6.5, 3.2),
            (6.0, -6.5, 6.0, -6.5, 3.2),
            (-10.0, 3.0, -10.0, 3.0, 3.0),  # thumb side
        ),
    ),
}
_PALMS = np.array([_GEOMETRY[s][0] for s in SHAPES], np.float32)  # (3, 4)
_FINGERS = np.array([_GEOMETRY[s][1] for s in SHAPES], np.float32)  # (3, 5, 5)

# ImageNet-style normalisation followed by sign() binarises a grey frame at about 0.45-0.46 (0.449:
# the mean of the channel means; 0.459: their luma-weighted zero crossing, as in
# training.preprocess). The hand is kept clear above that, in the darkest corner of the darkest
# frame, before shading and noise.
_HAND_FLOOR = 0.56

_CHUNK = 4  # clips rendered together: few enough that the temporaries stay in cache (faster than 32)


def _bilinear_matrix(n_out, n_in):
    """(n_out, n_in) matrix that linearly interpolates n_in samples spanning the frame to n_out."""
    pos = np.linspace(0.0, n_in - 1.0, n_out)
    return np.stack([np.interp(pos, np.arange(n_in), np.eye(n_in)[j]) for j in range(n_in)], axis=1)


def _smooth_noise(rng, size):
    """Unit-peak smooth random field: a coarse Gaussian grid, bilinearly upsampled."""
    k = int(rng.integers(3, 9))
    m = _bilinear_matrix(size, k)
    field = m @ rng.standard_normal((k, k)) @ m.T
    return field / max(np.abs(field).max(), 1e-6)


def _background(rng, size):
    """A static textured background: smooth blotches, a gradient or stripes. Returns its base grey
    level and the (size, size) image."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1.0) * 2.0 - 1.0
    kind = int(rng.integers(3))
    if kind == 0:
        pattern = _smooth_noise(rng, size)
    elif kind == 1:
        theta = rng.uniform(0, 2 * np.pi)
        pattern = 0.7 * (xx * np.cos(theta) + yy * np.sin(theta)) + 0.3 * _smooth_noise(rng, size)
    else:
        theta = rng.uniform(0, np.pi)
        cycles = rng.uniform(3.0, 10.0)  # stripes of 6-20 px period at size 64
        phase = rng.uniform(0, 2 * np.pi)
        pattern = 0.7 * np.sin(np.pi * cycles * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
        pattern += 0.3 * _smooth_noise(rng, size)
    # Mostly below the binarisation threshold; the brightest stripes and blotches of some clips
    # cross it and leave clutter in the binary frames.
    base = rng.uniform(0.08, 0.32)
    amplitude = rng.uniform(0.04, 0.16)
    return base, base + amplitude * pattern


def _progress(rng, frames):
    """Monotone 0 -> 1 motion progress over the clip, with random onset, end and easing: speed jitter.
    Its distribution is symmetric under time reversal (p(t) -> 1 - p(T-1-t))."""
    tau = np.linspace(0.0, 1.0, frames)
    t0, t1 = rng.uniform(0.0, 0.3), rng.uniform(0.7, 1.0)
    q = np.clip((tau - t0) / (t1 - t0), 0.0, 1.0)
    ease = rng.uniform(0.0, 1.0)
    return (1 - ease) * q + ease * q * q * (3 - 2 * q)


def _clip_params(seed, index, frames, size):
    """Everything random about clip `index`, drawn from its own generator."""
    rng = np.random.default_rng([seed, index])
    label = index % NUM_CLASSES
    shape, motion = divmod(label, len(MOTIONS))
    px = size / 64.0  # geometry and paths are specified for 64x64 frames

    p = _progress(rng, frames)
    scale = rng.uniform(0.85, 1.15) * np.ones(frames)
    fingers = np.ones(frames)  # finger length factor
    cx0 = 32.0 + rng.uniform(-4.0, 4.0)
    cy0 = 32.0 + rng.uniform(-4.0, 4.0)
    angle = np.deg2rad(rng.uniform(-15.0, 15.0) + rng.uniform(-10.0, 10.0) * np.sin(np.pi * p))
    tremor = rng.normal(0.0, 0.35, (2, frames))
    # Every motion goes out and comes back (bump 0 -> 1 -> 0): the last frame shows the open hand
    # where it started, so a model that sees only that frame cannot tell the motion.
    bump = np.sin(np.pi * p)
    if motion == 2:  # grasp: the fingers fold into the palm and open again, the hand in place
        cx, cy = cx0 + tremor[0], cy0 + tremor[1]
        scale = scale * (1.0 - 0.2 * bump)
        fingers = 1.0 - 0.75 * bump
    else:
        # A sweep to the right and back, or its mirror image to the left: the same path
        # distribution mirrored, so the pair differs only in the direction of the motion.
        direction = 1.0 if motion == 0 else -1.0
        travel = rng.uniform(12.0, 18.0)
        drift = rng.uniform(-3.0, 3.0)
        cx = cx0 + direction * travel * bump + tremor[0]
        cy = cy0 + drift * bump + tremor[1]

    base, background = _background(rng, size)
    gains = rng.uniform(0.85, 1.15, 2)  # illumination at the first and the last frame
    tilt = rng.uniform(0.0, 0.15)  # side lighting: brightness slope across the frame
    tilt_dir = rng.uniform(0, 2 * np.pi)
    # Hand brighter than its surroundings by a random margin, and above the binarisation threshold.
    hand = max(base + rng.uniform(0.35, 0.55), _HAND_FLOOR / (gains.min() * (1.0 - tilt)))
    shade = rng.uniform(-0.08, 0.08)  # light falling off from fingertips to wrist, or the reverse
    fpn = rng.normal(0.0, rng.uniform(0.005, 0.02), (size, size))  # fixed-pattern noise
    noise = rng.standard_normal((frames, size, size), dtype=np.float32) * np.float32(rng.uniform(0.01, 0.04))

    return dict(
        shape=shape,
        cx=cx * px,
        cy=cy * px,
        # cos/sin here, per clip in float64, rather than over the chunk: keeps clip i bit-identical
        # however the clips are chunked (numpy's vectorised float32 cos may round differently).
        cos=np.cos(angle),
        sin=np.sin(angle),
        scale=scale * _HAND_UNIT * px,
        fingers=fingers,
        background=background,
        gain=np.linspace(gains[0], gains[1], frames),
        tilt=tilt,
        tilt_dir=tilt_dir,
        hand=hand,
        shade=shade,
        fpn=fpn,
        noise=noise,
    )


def _render(params, size):
    """Render a chunk of clips; returns (clips (C, T, S, S) float32 in [0, 1], masks bool)."""

    def stack(key, dtype=np.float32):
        return np.stack([p[key] for p in params]).astype(dtype)

    def col(a):  # broadcast per-clip or per-frame values against (C, T, S, S)
        return a.reshape(a.shape + (1,) * (4 - a.ndim))

    shape = stack("shape", np.int64)
    cx, cy, cos, sin, scale, fingers = (col(stack(k)) for k in ("cx", "cy", "cos", "sin", "scale", "fingers"))
    grid = np.arange(size, dtype=np.float32)
    dx = grid[None, None, None, :] - cx
    dy = grid[None, None, :, None] - cy
    u = (cos * dx + sin * dy) / scale  # hand coordinates
    v = (cos * dy - sin * dx) / scale

    palm = _PALMS[shape]  # (C, 4)
    pcx, pcy, rx, ry = (col(palm[:, j]) for j in range(4))
    eu, ev = (u - pcx) / rx, (v - pcy) / ry
    k0 = np.sqrt(eu * eu + ev * ev)
    k1 = np.sqrt((eu / rx) ** 2 + (ev / ry) ** 2)
    sdf = k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)  # ellipse distance, accurate near the outline
    for j in range(_CAPSULES):
        ax, ay, bx, by, radius = (col(_FINGERS[shape, j, i]) for i in range(5))
        bx, by = ax + fingers * (bx - ax), ay + fingers * (by - ay)
        pu, pv, su, sv = u - ax, v - ay, bx - ax, by - ay
        h = np.clip((pu * su + pv * sv) / np.maximum(su * su + sv * sv, 1e-6), 0.0, 1.0)
        qu, qv = pu - h * su, pv - h * sv
        sdf = np.minimum(sdf, np.sqrt(qu * qu + qv * qv) - radius)  # not np.hypot: 10x slower
    # sdf * scale is the distance in pixels: a one-pixel antialiased edge.
    alpha = np.clip(0.5 - sdf * scale, 0.0, 1.0)

    hand = col(stack("hand")) * (1.0 + col(stack("shade")) * np.clip(v, -16.0, 12.0) / 12.0)
    background = stack("background")[:, None]
    image = background + alpha * (hand - background)

    ramp_y, ramp_x = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1.0) * 2.0 - 1.0
    tilt_dir = stack("tilt_dir")[:, None, None]
    side = np.cos(tilt_dir) * ramp_x + np.sin(tilt_dir) * ramp_y  # (C, S, S)
    light = col(stack("gain")) * (1.0 + stack("tilt")[:, None, None, None] * side[:, None])
    image = image * light + stack("fpn")[:, None] + stack("noise")
    return np.clip(image, 0.0, 1.0).astype(np.float32, copy=False), alpha >= 0.5


def generate(num_clips, seed=0, frames=FRAMES, size=SIZE, return_masks=False):
    """Generate clips 0 .. num_clips-1 of the data set with this seed.

    Returns clips float32 (N, frames, size, size) in [0, 1] and labels int64 (N,), label = i mod 9 so
    classes are balanced; with return_masks also the ground-truth hand masks, bool, like clips.
    Clip i depends only on (seed, i), so a longer run extends a shorter one.
    """
    if num_clips < 0:
        raise ValueError(f"num_clips must be >= 0, got {num_clips}")
    return _generate_range(0, num_clips, seed, frames, size, return_masks)


def _generate_range(start, stop, seed, frames, size, return_masks=False):
    """Clips start .. stop-1 of generate(stop, seed), without rendering the first `start`."""
    if frames < 2 or size < 16:
        raise ValueError(f"need frames >= 2 and size >= 16, got frames={frames}, size={size}")
    clips = np.empty((stop - start, frames, size, size), np.float32)
    masks = np.empty(clips.shape, bool) if return_masks else None
    for lo in range(start, stop, _CHUNK):
        hi = min(lo + _CHUNK, stop)
        rendered, chunk_masks = _render([_clip_params(seed, i, frames, size) for i in range(lo, hi)], size)
        clips[lo - start : hi - start] = rendered
        if return_masks:
            masks[lo - start : hi - start] = chunk_masks
    labels = np.arange(start, stop, dtype=np.int64) % NUM_CLASSES
    return (clips, labels, masks) if return_masks else (clips, labels)


def split_seed(split, seed=0):
    """The generate() seed of a split: distinct for every (split, seed) with seed >= 0."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return len(SPLITS) * seed + SPLITS.index(split)


def load_synthetic(split, num_clips=None, seed=0, frames=FRAMES, size=SIZE):
    """A tf.data.Dataset of (clip float32 (frames, size, size, 1) in [0, 1], label int32), generated
    in memory, without the tfds preparation step. The same clips as the tfds builder with the same
    seed and split size (up to its uint8 storage). Unbatched, in generation order (labels cycle
    0..8): shuffle before training."""
    if num_clips is None:
        num_clips = DEFAULT_SPLIT_SIZES[split]
    clips, labels = _generated_split(num_clips, split_seed(split, seed), frames, size)
    # A Python generator over the arrays instead of from_tensor_slices: no second in-graph copy,
    # and no 2 GB graph-constant limit for large splits.

    def examples():
        for clip, label in zip(clips, labels):
            yield clip[..., None], np.int32(label)

    signature = (
        tf.TensorSpec((frames, size, size, 1), tf.float32),
        tf.TensorSpec((), tf.int32),
    )
    return tf.data.Dataset.from_generator(examples, output_signature=signature).apply(
        tf.data.experimental.assert_cardinality(num_clips)
    )


@functools.lru_cache(maxsize=3)
def _generated_split(num_clips, seed, frames, size):
    # A sweep trains many models on the same clips in one process: render each split once (the
    # train, validation and test splits of one data config), read-only so no run can change it.
    clips, labels = generate(num_clips, seed, frames, size)
    clips.flags.writeable = labels.flags.writeable = False
    return clips, labels


def load_prepared(split, data_dir=None, config=None):
    """The same (clip, label) pairs as load_synthetic, read from a prepared tfds copy (prepared here
    first if missing), in tfds' stored order."""
    builder = SyntheticGestures(data_dir=data_dir, config=config)
    builder.download_and_prepare()
    return builder.as_dataset(split=split).map(
        lambda ex: (tf.cast(ex["video"], tf.float32) / 255.0, tf.cast(ex["label"], tf.int32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def clip_name(split, index):
    return f"{split}_{index:05d}_{CLASS_NAMES[index % NUM_CLASSES]}"


@dataclasses.dataclass(eq=False)
class SyntheticGesturesConfig(tfds.core.BuilderConfig):
    """Split sizes and base seed; split s uses generate(..., seed=split_seed(s, seed))."""

    train_clips: int = DEFAULT_SPLIT_SIZES["train"]
    validation_clips: int = DEFAULT_SPLIT_SIZES["validation"]
    test_clips: int = DEFAULT_SPLIT_SIZES["test"]
    seed: int = 0
    frames: int = FRAMES
    size: int = SIZE


class SyntheticGestures(tfds.core.GeneratorBasedBuilder):
    """tfds builder of synthetic_gestures. Frames are stored as uint8 PNG (round(255 x))."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        SyntheticGesturesConfig(name="default", description="1800 / 300 / 300 clips of 16 frames, 64x64."),
    ]

    def _info(self):
        c = self.builder_config
        # DatasetInfo directly rather than dataset_info_from_configs: the latter would pick up any
        # README.md that lands in this package as the data set description.
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "video": tfds.features.Video(shape=(c.frames, c.size, c.size, 1)),
                    "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                    "clip_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("video", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # procedural: nothing to download
        c = self.builder_config
        sizes = {"train": c.train_clips, "validation": c.validation_clips, "test": c.test_clips}
        return {split: self._generate_examples(split, sizes[split]) for split in SPLITS}

    def _generate_examples(self, split, num_clips):
        c = self.builder_config
        seed = split_seed(split, c.seed)
        # Chunks of generate(): bounded memory for any split size; clip i does not depend on chunking.
        chunk = 256
        for start in range(0, num_clips, chunk):
            stop = min(start + chunk, num_clips)
            clips, labels = _generate_range(start, stop, seed, c.frames, c.size)
            video = np.round(clips * 255.0).astype(np.uint8)[..., None]
            for offset, (frames, label) in enumerate(zip(video, labels)):
                index = start + offset
                yield index, {"video": frames, "label": int(label), "clip_name": clip_name(split, index)}

