"""synthetic_gestures against independent oracles: determinism, layout, the hand's ground-truth masks
(geometry, motion, visibility after binarisation), and the tfds builder against generate()."""

import numpy as np
import pytest

import pixelrnn_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)
from training import synthetic
from training.synthetic import CLASS_NAMES, MOTIONS, SHAPES, generate

CLIPS_PER_CLASS = 60
RIGHT, LEFT, GRASP = (MOTIONS.index(m) for m in ("sweep_right", "sweep_left", "grasp"))


@pytest.fixture(scope="module")
def data():
    clips, labels, masks = generate(len(CLASS_NAMES) * CLIPS_PER_CLASS, seed=11, return_masks=True)
    return clips, labels, masks


def _centroid_x(weights):
    """Horizontal centroid of every frame: (N, T, H, W) non-negative weights -> (N, T)."""
    x = np.arange(weights.shape[-1], dtype=np.float64)
    return (weights * x).sum((-2, -1)) / weights.sum((-2, -1))


def _centroid_y(weights):
    y = np.arange(weights.shape[-2], dtype=np.float64)[:, None]
    return (weights * y).sum((-2, -1)) / weights.sum((-2, -1))


def _slope(series):
    """Least-squares slope over time of each row of (N, T)."""
    t = np.arange(series.shape[1]) - (series.shape[1] - 1) / 2
    return ((series - series.mean(1, keepdims=True)) * t).sum(1) / (t * t).sum()


def _cross(masks):
    """Each pixel and its 4 neighbours (outside the frame: False), stacked on a new first axis."""
    p = np.pad(masks, [(0, 0)] * (masks.ndim - 2) + [(1, 1), (1, 1)])
    return np.stack([p[..., 1:-1, 1:-1], p[..., :-2, 1:-1], p[..., 2:, 1:-1], p[..., 1:-1, :-2], p[..., 1:-1, 2:]])


def _perimeter(masks):
    """Boundary pixels of each frame: mask pixels with a 4-neighbour outside the mask."""
    return (masks & ~_cross(masks).all(0)).sum((-2, -1))


def _dilate(masks, steps):
    for _ in range(steps):
        masks = _cross(masks).any(0)
    return masks


def test_class_names():
    assert len(CLASS_NAMES) == 9 and len(set(CLASS_NAMES)) == 9
    for label, name in enumerate(CLASS_NAMES):
        assert name == f"{SHAPES[label // 3]}_{MOTIONS[label % 3]}"


def test_deterministic_and_independent_of_num_clips():
    clips_a, labels_a = generate(10, seed=7)
    clips_b, labels_b = generate(10, seed=7)
    np.testing.assert_array_equal(clips_a, clips_b)
    np.testing.assert_array_equal(labels_a, labels_b)
    clips_20, labels_20 = generate(20, seed=7)
    np.testing.assert_array_equal(clips_20[:10], clips_a)
    np.testing.assert_array_equal(labels_20[:10], labels_a)
    # Across a rendering-chunk boundary, with chunks of different sizes on the two sides.
    np.testing.assert_array_equal(generate(40, seed=7)[0][:33], generate(33, seed=7)[0])
    other, _ = generate(10, seed=8)
    assert not np.any([np.array_equal(a, b) for a, b in zip(clips_a, other)])


def test_layout_range_and_balance():
    clips, labels = generate(27, seed=1)
    assert clips.shape == (27, 16, 64, 64) and clips.dtype == np.float32
    assert labels.shape == (27,) and labels.dtype == np.int64
    assert clips.min() >= 0.0 and clips.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(labels, minlength=9), np.full(9, 3))
    small, _ = generate(9, seed=1, frames=8, size=32)
    assert small.shape == (9, 8, 32, 32)
    assert generate(0)[0].shape == (0, 16, 64, 64)


def test_clips_vary(data):
    clips, _, _ = data
    # Backgrounds, brightness and illumination differ from clip to clip and over time.
    assert np.std(clips.mean((1, 2, 3))) > 0.03
    drift = clips[:, -1].mean((1, 2)) - clips[:, 0].mean((1, 2))
    assert np.std(drift) > 0.02
    # Sensor noise: consecutive frames never repeat exactly.
    assert np.all(np.abs(np.diff(clips, axis=1)).mean((2, 3)) > 0)


def _same_distribution(a, b):
    pooled = np.sqrt((a.var() + b.var()) / 2)
    return abs(a.mean() - b.mean()) < 0.75 * pooled  # 3.4 standard errors at 60 clips a class


@pytest.mark.parametrize("shape", range(3))
def test_sweeps_differ_only_in_direction(data, shape):
    clips, labels, masks = data
    right, left = labels == 3 * shape + RIGHT, labels == 3 * shape + LEFT
    cx = _centroid_x(masks)
    offset = cx - cx[:, :1]  # displacement from where the clip started
    # every right sweep goes out to the right by several pixels and comes back; left mirrors it
    assert np.all(offset[right].max(1) > 8) and np.all(offset[right].min(1) > -3)
    assert np.all(offset[left].min(1) < -8) and np.all(offset[left].max(1) < 3)
    assert np.all(np.abs(offset[:, -1][right | left]) < 3)
    # mirror images: the same distribution of reach and of mean displacement, mirrored
    assert _same_distribution(offset[right].max(1), -offset[left].min(1))
    assert _same_distribution(offset[right].mean(1), -offset[left].mean(1))
    # the brightness of the image follows the masks (the hand is the bright thing that moves)
    bright = np.clip(clips - np.median(clips, axis=(2, 3), keepdims=True), 0, None)
    assert np.all(_centroid_x(bright)[right].max(1) > _centroid_x(bright)[right][:, 0] + 4)


def test_grasp_closes_and_reopens_the_hand_in_place(data):
    _, labels, masks = data
    grasp = labels % 3 == GRASP
    area = masks.sum((2, 3)).astype(np.float64)
    assert np.all(area[grasp].min(1) < 0.8 * area[grasp, 0])
    # reopened: the last frame is as large as the first (the same shape at the same scale)
    np.testing.assert_allclose(area[grasp, -1], area[grasp, 0], rtol=0.15)
    cx = _centroid_x(masks)
    assert np.all(np.ptp(cx[grasp], axis=1) < 6)
    assert np.all(np.ptp(cx[~grasp], axis=1) > 10)


def test_last_frame_does_not_tell_the_motion(data):
    """A model that sees only the last frame (the CNN-only control) has no cue to the motion:
    position and hand area of the last frame are distributed alike in all motions of a shape."""
    _, labels, masks = data
    area = masks.sum((2, 3)).astype(np.float64)[:, -1]
    cx, cy = _centroid_x(masks)[:, -1], _centroid_y(masks)[:, -1]
    for shape in range(3):
        groups = [labels == 3 * shape + motion for motion in range(3)]
        for series in (area, cx, cy):
            for g in groups[1:]:
                assert _same_distribution(series[groups[0]], series[g])


def test_shapes_differ(data):
    _, labels, masks = data
    moving = labels % 3 != GRASP
    area = masks.sum((2, 3)).astype(np.float64)
    # Scale-free outline complexity: fingers and the gaps between them lengthen the outline.
    compactness = (_perimeter(masks) ** 2 / area).mean(1)
    by_shape = [compactness[moving & (labels // 3 == s)] for s in range(3)]
    flat, v, fist = (SHAPES.index(s) for s in ("flat", "v", "fist"))
    assert by_shape[flat].min() > by_shape[v].max()
    assert by_shape[v].min() > by_shape[fist].max()
    mean_area = [area[moving & (labels // 3 == s)].mean() for s in range(3)]
    assert mean_area[flat] > 1.2 * max(mean_area[v], mean_area[fist])
    # Hand sizes the brief asks for: 20-28 px across the longer side, on average per shape.
    for s in range(3):
        m = masks[moving & (labels // 3 == s), 8]
        rows, cols = m.any(2).sum(1), m.any(1).sum(1)
        assert 18 <= np.maximum(rows, cols).mean() <= 30


def test_hand_visible_after_binarisation(data):
    clips, _, masks = data
    # ImageNet-style normalisation then sign() thresholds a grey frame somewhere in 0.449-0.459
    # (channel-mean or luma-weighted grey): judge the hand at the top, the background at the bottom.
    hand_on = ((clips > 0.459) & masks).sum((1, 2, 3)) / masks.sum((1, 2, 3))
    background_on = ((clips > 0.449) & ~masks).sum((1, 2, 3)) / (~masks).sum((1, 2, 3))
    assert hand_on.min() > 0.85 and hand_on.mean() > 0.95
    assert background_on.max() < 0.2 and np.median(background_on) < 0.02
    # The hand is brighter than the background right around it, in every frame.
    ring = _dilate(masks, 3) & ~_dilate(masks, 1)
    core = masks & ~_dilate(~masks, 1)
    hand_level = (clips * core).sum((2, 3)) / core.sum((2, 3))
    ring_level = (clips * ring).sum((2, 3)) / np.maximum(ring.sum((2, 3)), 1)
    assert np.all(hand_level - ring_level > 0.15)


def test_load_synthetic_matches_generate():
    ds = synthetic.load_synthetic("validation", num_clips=5, seed=2)
    assert ds.element_spec[0].shape == (16, 64, 64, 1) and ds.element_spec[1].dtype.name == "int32"
    assert int(ds.cardinality()) == 5
    got = list(ds.as_numpy_iterator())
    clips, labels = generate(5, seed=synthetic.split_seed("validation", 2))
    np.testing.assert_array_equal(np.stack([c for c, _ in got])[..., 0], clips)
    np.testing.assert_array_equal([y for _, y in got], labels)
    seeds = {synthetic.split_seed(split, s) for split in synthetic.SPLITS for s in range(4)}
    assert len(seeds) == 12


@pytest.mark.slow
def test_tfds_builder_matches_generate(tmp_path):
    config = synthetic.SyntheticGesturesConfig(
        name="tiny", train_clips=9, validation_clips=9, test_clips=5, seed=3
    )
    builder = synthetic.SyntheticGestures(data_dir=str(tmp_path), config=config)
    assert builder.name == "synthetic_gestures" and str(builder.info.version) == "1.0.0"
    builder.download_and_prepare()
    assert builder.info.features["label"].names == list(CLASS_NAMES)
    sizes = {"train": 9, "validation": 9, "test": 5}
    firsts = []
    for split, n in sizes.items():
        assert builder.info.splits[split].num_examples == n
        examples = list(builder.as_dataset(split=split).as_numpy_iterator())
        assert len(examples) == n
        clips, labels = generate(n, seed=synthetic.split_seed(split, 3))
        seen = set()
        for ex in examples:
            name = ex["clip_name"].decode()
            index = int(name.split("_")[1])
            seen.add(index)
            assert name == f"{split}_{index:05d}_{CLASS_NAMES[labels[index]]}"
            assert ex["label"] == labels[index]
            assert ex["video"].shape == (16, 64, 64, 1) and ex["video"].dtype == np.uint8
            err = np.abs(ex["video"][..., 0] / 255.0 - clips[index])
            assert err.max() <= 0.5 / 255 + 1e-6
        assert seen == set(range(n))
        firsts.append(clips[0])
    assert not np.array_equal(firsts[0], firsts[1])  # splits use different seeds

    # The fast path reads the same clips back, as floats in [0, 1].
    clip, label = next(iter(synthetic.load_prepared("test", data_dir=str(tmp_path), config=config)))
    assert clip.shape == (16, 64, 64, 1) and clip.dtype.name == "float32" and label.dtype.name == "int32"
