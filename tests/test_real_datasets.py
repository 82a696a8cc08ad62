"""The real data sets' TFDS builders (cambridge_hand_gesture, tulips1), their splits and the shared
preprocessing, on small dummy folders that the tests write themselves (TFDS's dummy-data convention:
the real data sets cannot be downloaded here)."""

import hashlib
import json
import math
import os
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

from pixelrnn_tf._keras import tf
import tensorflow_datasets as tfds

from training import preprocess, splits, tulips1
from training.clip_folders import DatasetLayoutError

SPLIT_JSON = pathlib.Path(__file__).resolve().parents[1] / "training" / "data" / "cambridge_split.json"
FRAMES_PER_CLIP = 2
DUMMY_SETS = (1, 2, 5)
# Held-out clips of the authors' split that the dummy Cambridge folder contains too.
DUMMY_HELD_OUT = ("Set1_1_0013", "Set5_1_0000", "Set1_1_0002", "Set5_1_0001")
TULIPS_SPEAKERS = ("Anthony", "Ben", "Cynthea", "Don", "Isaac", "Jesse", "Regina", "Simon")
# The PixelRNN authors' 10 Tulips1 test clips, as the issue lists them from their intermediates
AUTHORS_TULIPS_TEST = (
    "1/Regina1", "1/Regina2", "1/Simon2", "2/Cynthea1", "2/Don1", "2/Jesse1", "3/Don2", "3/Simon2", "4/Cynthea1", "4/Isaac2",
)
# The dummy folder: take 1 of every speaker and digit, and the second takes among the authors' clips
TULIPS_CLIPS = tuple(f"{d}/{s}1" for d in "1234" for s in TULIPS_SPEAKERS) + tuple(
    name for name in AUTHORS_TULIPS_TEST if name.endswith("2")
)


def authors_split():
    listed = json.loads(SPLIT_JSON.read_text())
    return set(listed["val"]), set(listed["test"])


def dummy_cambridge_names():
    """Set{s}_{c}_{nnnn} of the dummy clips: one per set and class, plus some the authors held out."""
    return [f"Set{s}_{c}_0010" for s in DUMMY_SETS for c in range(1, 10)] + list(DUMMY_HELD_OUT)


def write_jpeg_frames(folder, seed_text, count=FRAMES_PER_CLIP):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16))
    for index in range(count):
        frame = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        (folder / f"frame-{index:04d}.jpg").write_bytes(tf.io.encode_jpeg(frame).numpy())


def write_cambridge_original(root):
    """Set{s}/{gesture 0000..0008}/{nnnn}/frame-*.jpg, gesture folder = class - 1."""
    for name in dummy_cambridge_names():
        s, c, n = name[3:].split("_")
        write_jpeg_frames(root / f"Set{s}" / f"{int(c) - 1:04d}" / n, name)
    return root


def flatten_cambridge(original, flat):
    """The PixelRNN authors' layout {class}/Set{s}_{c}_{nnnn}/ made from the same files."""
    for clip_folder in sorted(original.glob("Set*/*/*")):
        s = clip_folder.parts[-3][3:]
        c = int(clip_folder.parts[-2]) + 1
        shutil.copytree(clip_folder, flat / str(c) / f"Set{s}_{c}_{clip_folder.name}")
    return flat


def write_tulips(root):
    """{digit}/{Speaker}{take}/frame*.pgm for TULIPS_CLIPS: greyscale 24x32 frames."""
    for number, name in enumerate(TULIPS_CLIPS):
        folder = root / name
        folder.mkdir(parents=True)
        rng = np.random.default_rng(number)
        for index in range(1, FRAMES_PER_CLIP + 1):
            frame = rng.integers(0, 256, (24, 32), dtype=np.uint8)
            Image.fromarray(frame, "L").save(folder / f"frame{index:03d}.pgm")
    return root


def prepare(name, manual_dir, data_dir):
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


def read_examples(builder):
    """{split: {clip name: example as numpy}}."""
    return {
        split: {ex["clip_name"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}
        for split in builder.info.splits
    }


@pytest.fixture(scope="module")
def cambridge_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("cambridge")
    original = write_cambridge_original(base / "original")
    return {"original": original, "flat": flatten_cambridge(original, base / "flat"), "data": base / "data"}


@pytest.fixture(scope="module")
def cambridge_pixelrnn(cambridge_dirs):
    dirs = cambridge_dirs
    return read_examples(prepare("cambridge_hand_gesture/pixelrnn", dirs["original"], dirs["data"] / "original"))


# ---------------------------------------------------------------- Cambridge Hand Gesture


def test_both_cambridge_layouts_give_the_same_clips(cambridge_dirs, cambridge_pixelrnn):
    dirs = cambridge_dirs
    flat = read_examples(prepare("cambridge_hand_gesture/pixelrnn", dirs["flat"], dirs["data"] / "flat"))
    assert flat.keys() == cambridge_pixelrnn.keys()
    for split, examples in cambridge_pixelrnn.items():
        assert flat[split].keys() == examples.keys()
        for name, example in examples.items():
            s, c, _ = name[3:].split("_")
            assert example["label"] == int(c) - 1 and flat[split][name]["label"] == int(c) - 1
            assert example["illumination_set"] == int(s) == flat[split][name]["illumination_set"]
            assert example["video"].shape == (FRAMES_PER_CLIP, 24, 32, 3)
            np.testing.assert_array_equal(example["video"], flat[split][name]["video"])
    assert sorted(n for examples in flat.values() for n in examples) == sorted(dummy_cambridge_names())


def test_cambridge_frames_are_stored_as_their_original_jpeg(cambridge_dirs, cambridge_pixelrnn):
    builder = tfds.builder("cambridge_hand_gesture/pixelrnn", data_dir=str(cambridge_dirs["data"] / "original"))
    raw = builder.as_dataset(split="train", decoders={"video": tfds.decode.SkipDecoding()})
    example = next(iter(tfds.as_numpy(raw)))
    s, c, n = example["clip_name"].decode()[3:].split("_")
    files = sorted((cambridge_dirs["original"] / f"Set{s}" / f"{int(c) - 1:04d}" / n).iterdir())
    assert list(example["video"]) == [f.read_bytes() for f in files]


def test_cambridge_pixelrnn_split_holds_out_the_authors_clips(cambridge_pixelrnn):
    val, test = authors_split()
    names = set(dummy_cambridge_names())
    assert set(cambridge_pixelrnn["validation"]) == names & val
    assert set(cambridge_pixelrnn["test"]) == names & test
    assert set(cambridge_pixelrnn["train"]) == names - val - test
    assert {"Set1_1_0013", "Set5_1_0000"} <= set(cambridge_pixelrnn["validation"])
    assert {"Set1_1_0002", "Set5_1_0001"} <= set(cambridge_pixelrnn["test"])
    assert len(val) == len(test) == 90 and not val & test


def test_cambridge_standard_protocol_trains_on_set5(cambridge_dirs):
    dirs = cambridge_dirs
    examples = read_examples(prepare("cambridge_hand_gesture/standard", dirs["original"], dirs["data"] / "standard"))
    assert set(examples) == {"train", "test"}
    assert {ex["illumination_set"] for ex in examples["train"].values()} == {5}
    assert {ex["illumination_set"] for ex in examples["test"].values()} == {1, 2}
    assert sorted([*examples["train"], *examples["test"]]) == sorted(dummy_cambridge_names())


# ---------------------------------------------------------------- Tulips1


@pytest.fixture(scope="module")
def tulips_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("tulips1")
    return {"manual": write_tulips(base / "manual"), "data": base / "data"}


def test_tulips1_layout_labels_and_greyscale_frames(tulips_dirs):
    examples = read_examples(prepare("tulips1/stratified", tulips_dirs["manual"], tulips_dirs["data"]))
    everything = {name: ex for split in examples.values() for name, ex in split.items()}
    assert sorted(everything) == sorted(TULIPS_CLIPS)
    for name, example in everything.items():
        digit, folder = name.split("/")
        assert example["label"] == int(digit) - 1
        assert example["speaker"].decode() + str(example["take"]) == folder
        frames = [np.asarray(Image.open(tulips_dirs["manual"] / digit / folder / f"frame{i:03d}.pgm")) for i in (1, 2)]
        np.testing.assert_array_equal(example["video"], np.repeat(np.stack(frames)[..., None], 3, axis=-1))
    # 10, 8, 10 and 9 clips per class: round(0.1 n) = 1 test and 1 validation clip in each.
    for split, per_class in (("train", (8, 6, 8, 7)), ("validation", (1, 1, 1, 1)), ("test", (1, 1, 1, 1))):
        labels = [ex["label"] for ex in examples[split].values()]
        assert [labels.count(label) for label in range(4)] == list(per_class)


def test_tulips1_pixelrnn_split_tests_on_the_authors_ten_clips(tulips_dirs):
    examples = read_examples(prepare("tulips1/pixelrnn", tulips_dirs["manual"], tulips_dirs["data"]))
    assert sorted(examples["test"]) == sorted(AUTHORS_TULIPS_TEST)
    # Left per class after the test clips: 7, 5, 8 and 7; round(0.1 n) = 1 validation clip each.
    assert sorted(ex["label"] for ex in examples["validation"].values()) == [0, 1, 2, 3]
    assert len(examples["train"]) == len(TULIPS_CLIPS) - 10 - 4
    assert not set(examples["train"]) & (set(examples["validation"]) | set(examples["test"]))


REFERENCE = pathlib.Path(
    os.environ.get("PIXELRNN_REFERENCE_DIR", pathlib.Path(__file__).resolve().parents[2] / "shared" / "reference")
)


@pytest.mark.skipif(not (REFERENCE / "tulips1_test_intermediates.npz").is_file(), reason=f"no reference data at {REFERENCE}")
def test_tulips1_split_file_names_the_clips_of_the_authors_intermediates():
    intermediates = np.load(REFERENCE / "tulips1_test_intermediates.npz")
    names = {f"{label + 1}/{name}" for name, label in zip(intermediates["clip_names"], intermediates["labels"])}
    assert splits.tulips1_pixelrnn_test() == names == set(AUTHORS_TULIPS_TEST)


def test_tulips1_pixelrnn_split_needs_the_authors_clips():
    labels = {f"{d}/{s}1": int(d) - 1 for d in "1234" for s in TULIPS_SPEAKERS}
    with pytest.raises(ValueError, match="1/Regina2"):
        splits.tulips1_pixelrnn_split(labels)


@pytest.mark.parametrize("fold", range(tulips1.NUM_SPEAKER_FOLDS))
def test_tulips1_speaker_folds_keep_speakers_apart(tulips_dirs, fold):
    builder = prepare(f"tulips1/speaker_fold_{fold}", tulips_dirs["manual"], tulips_dirs["data"])
    examples = read_examples(builder)
    train = {ex["speaker"].decode() for ex in examples["train"].values()}
    test = {ex["speaker"].decode() for ex in examples["test"].values()}
    assert not train & test
    assert train | test == set(TULIPS_SPEAKERS)
    # Speakers in name order, cut into 4 groups of 2: fold k tests on the k-th group.
    assert test == set(sorted(TULIPS_SPEAKERS)[2 * fold : 2 * fold + 2])
    assert sorted(examples["test"]) == sorted(n for n in TULIPS_CLIPS if n.split("/")[1][:-1] in test)


def test_stratified_split_rule():
    labels = {f"clip{i:02d}": i % 3 for i in range(30)}  # 10 per class
    assignment = splits.stratified_split(labels, seed=7)
    for label in range(3):
        members = [n for n in labels if labels[n] == label]
        members.sort(key=lambda n: hashlib.sha256(f"7/{n}".encode()).hexdigest())
        assert [assignment[n] for n in members] == ["test", "validation"] + ["train"] * 8
    assert splits.stratified_split(labels, seed=7) == assignment
    assert splits.stratified_split(labels, seed=8) != assignment


# ---------------------------------------------------------------- layout errors and bad clips


def test_missing_manual_folder_names_folder_and_layout(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(DatasetLayoutError) as caught:
        prepare("cambridge_hand_gesture/pixelrnn", missing, tmp_path / "data")
    message = str(caught.value)
    assert str(missing) in message and "Set1/ ... Set5/" in message and "Set{s}_{c}_{nnnn}" in message
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, ValueError)


def test_wrong_layout_names_folder_and_layout(tmp_path):
    (tmp_path / "manual" / "videos" / "clip1").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError) as caught:
        prepare("tulips1/pixelrnn", tmp_path / "manual", tmp_path / "data")
    message = str(caught.value)
    assert str(tmp_path / "manual") in message and "videos" in message
    assert "<Speaker><take>/" in message


def test_cambridge_set_without_nine_gestures_is_a_layout_error(tmp_path):
    write_jpeg_frames(tmp_path / "manual" / "Set1" / "0000" / "0000", "x")
    with pytest.raises(DatasetLayoutError, match="Set1 must hold 9 gesture folders"):
        prepare("cambridge_hand_gesture/standard", tmp_path / "manual", tmp_path / "data")


def test_empty_and_corrupt_clips_are_skipped_with_a_warning(tmp_path):
    manual = write_tulips(tmp_path / "manual")
    for frame in (manual / "2" / "Ben1").iterdir():
        frame.unlink()
    (manual / "3" / "Don1" / "frame002.pgm").write_bytes(b"P5 this is not an image")
    (manual / "4" / "Isaac1" / "frame001.jpg").write_bytes(b"\xff\xd8\xff but no JPEG after it")
    with pytest.warns(UserWarning) as caught:
        builder = prepare("tulips1/speaker_fold_0", manual, tmp_path / "data")
    messages = " ".join(str(w.message) for w in caught)
    for skipped in ("2/Ben1", "3/Don1", "4/Isaac1"):
        assert f"skipped clip {skipped}" in messages
    assert "frame002.pgm" in messages and "frame001.jpg" in messages
    names = {n for split in read_examples(builder).values() for n in split}
    assert len(names) == len(TULIPS_CLIPS) - 3
    assert not {"2/Ben1", "3/Don1", "4/Isaac1"} & names


# ---------------------------------------------------------------- preprocessing


def test_frame_indices_for_40_frames():
    base = [math.floor(k * 40 / 16) for k in range(16)]
    assert base == [0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27, 30, 32, 35, 37]
    assert int(preprocess.frame_slack(40)) == 2  # frames 38 and 39 lie past the last index
    evaluation = preprocess.sample_frame_indices(40).numpy()
    assert evaluation.tolist() == [i + 2 for i in base] and evaluation[-1] == 39
    offsets = set()
    for seed in range(40):
        drawn = preprocess.sample_frame_indices(40, training=True, seed=[seed, 0]).numpy()
        (offset,) = set(drawn - base)
        offsets.add(int(offset))
    assert offsets == {0, 1, 2}


def test_short_clip_repeats_frames():
    assert preprocess.sample_frame_indices(5).numpy().tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    # Frame i of the clip is the uniform grey level 10 * i: the output frames tell which were taken.
    clip = np.stack([np.full((8, 8, 1), 10 * i, np.uint8) for i in range(5)])
    out = preprocess.preprocess_clip(clip).numpy()
    def grey(level):
        x = level / 255
        return (x - 0.485) / 0.229 * 0.2989 + (x - 0.456) / 0.224 * 0.587 + (x - 0.406) / 0.225 * 0.114

    expected = [grey(10 * i) for i in [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]]
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), expected, atol=1e-5)


def test_normalised_grey_of_a_constant_colour():
    # (255, 128, 0): ((1 - .485) / .229) * .2989 + ((128/255 - .456) / .224) * .587 + ((0 - .406) / .225) * .114
    #              = 0.672198 + 0.120442 - 0.205707 = 0.586933
    clip = np.tile(np.array([255, 128, 0], np.uint8), (20, 30, 40, 1))
    out = preprocess.preprocess_clip(clip)
    assert out.shape == (16, 64, 64, 1) and out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), 0.586933, atol=1e-5)


def test_greyscale_input_is_replicated_before_normalising():
    grey = np.random.default_rng(0).integers(0, 256, (17, 20, 24, 1), dtype=np.uint8)
    np.testing.assert_allclose(
        preprocess.preprocess_clip(grey).numpy(),
        preprocess.preprocess_clip(np.repeat(grey, 3, axis=-1)).numpy(),
        atol=1e-6,
    )


def test_halving_resize_is_a_two_by_two_mean():
    # Bilinear with half-pixel centres and no antialiasing samples between pixels 2i and 2i+1;
    # an antialiased or corner-aligned resize would not give the plain 2x2 mean.
    frames = np.random.default_rng(1).random((16, 128, 128, 3)).astype(np.float32)
    grey = preprocess.normalize_grey(frames).numpy()
    expected = grey.reshape(16, 64, 2, 64, 2, 1).mean(axis=(2, 4))
    np.testing.assert_allclose(preprocess.preprocess_clip(frames).numpy(), expected, atol=1e-5)


def test_random_translation_shifts_whole_pixels_with_zero_fill():
    frames = np.ones((64, 20, 30, 1), np.float32)
    shifted = preprocess.random_translate(frames, 0.1, seed=[3, 4]).numpy()[..., 0]
    widths = set()
    for frame in shifted:
        rows, cols = np.nonzero(frame)
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert frame.sum() == height * width  # one rectangle of ones, zeros around it
        assert 20 - height <= 2 and 30 - width <= 3  # at most 10% of each side
        widths.add(width)
    assert len(widths) > 1  # every frame draws its own shift


def test_make_dataset_pipelines(cambridge_dirs, cambridge_pixelrnn):
    kwargs = dict(data_dir=str(cambridge_dirs["data"] / "original"), manual_dir=str(cambridge_dirs["original"]))
    evaluation = preprocess.make_dataset("cambridge_hand_gesture/pixelrnn", "test", batch_size=2, **kwargs)
    clips, labels = next(iter(evaluation))
    assert clips.shape == (2, 16, 64, 64, 1) and clips.dtype == tf.float32 and labels.dtype == tf.int32
    first, second = (np.concatenate([c.numpy() for c, _ in evaluation]) for _ in range(2))
    np.testing.assert_array_equal(first, second)

    def epochs(dataset):
        return [np.concatenate([c.numpy() for c, _ in dataset]) for _ in range(2)]

    kwargs.update(training=True, batch_size=4, seed=5)
    one, two = epochs(preprocess.make_dataset("cambridge_hand_gesture", "train", config="pixelrnn", **kwargs))
    assert one.shape == (len(cambridge_pixelrnn["train"]), 16, 64, 64, 1)
    assert not np.array_equal(one, two)  # fresh order and translations every epoch
    again = epochs(preprocess.make_dataset("cambridge_hand_gesture/pixelrnn", "train", **kwargs))
    np.testing.assert_array_equal(one, again[0])
    np.testing.assert_array_equal(two, again[1])
