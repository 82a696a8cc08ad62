"""Video clips stored as folders of image files: the shared part of the manual-download TFDS builders.

Both real data sets (Cambridge Hand Gesture, Tulips1) come as one folder per clip holding one image
file per frame. `ClipFolderBuilder` finds a builder's manual folder, asks the data set's builder for
its clips and their splits, lists and orders the frames of each clip, and turns them into what
`tfds.features.Video` stores, checking every frame on the way.

Frames are stored as they came when the file is already in the builder's encoding format (JPEG bytes
stay JPEG bytes: no second lossy compression, no growth in size); anything else (PGM, BMP, TIFF, a PNG
in a JPEG data set) is decoded and handed to TFDS as an RGB array, which TFDS encodes in the builder's
format. Greyscale frames are replicated to three channels, so every clip reads back as RGB uint8.

A clip with no frames, an unreadable frame, or frames of different sizes is skipped with a warning
that names it: a missing frame would shift the clip's time line, and a zero-filled one would be a
silent lie in the training data.
"""

import abc
import dataclasses
import io
import re
import typing
import warnings

from etils import epath
import numpy as np
from PIL import Image  # a dependency of matplotlib, which this package requires

from pixelrnn_tf._keras import tf  # must precede tensorflow_datasets: it selects Keras 2
import tensorflow_datasets as tfds  # noqa: E402

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".pnm", ".tif", ".tiff"})

# Magic numbers of the two formats TFDS's Video feature can store; tf.io.decode_image reads both.
_SIGNATURES = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}

class DatasetLayoutError(FileNotFoundError, ValueError):
    """The manual folder of a data set is missing, empty, or not laid out as its instructions say."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """One clip folder found in a manual folder, before its frames are read. `features` holds the
    data set's own per-clip TFDS features (Cambridge: illumination_set; Tulips1: speaker, take)."""

    name: str
    label: int
    path: epath.Path
    features: typing.Mapping[str, object] = dataclasses.field(default_factory=dict)


class ClipFolderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A TFDS builder for a data set of clip folders in a manual folder.

    A data set's builder says where its clips are (`_find_clips`) and which split each belongs to
    (`_assign_splits`); this class does the rest. Every split the config names must receive at least
    one clip, or preparation stops with a DatasetLayoutError, because TFDS would otherwise fail later
    with a message about empty shards.
    """

    # The format TFDS stores frames in; frames already in it are stored byte for byte.
    ENCODING_FORMAT: typing.ClassVar[str] = "png"

    @abc.abstractmethod
    def _find_clips(self, root):
        """The list of `Clip`s under `root`, the data set's folder; raises DatasetLayoutError."""

    @abc.abstractmethod
    def _split_names(self):
        """The splits the builder's config defines, e.g. ("train", "test")."""

    @abc.abstractmethod
    def _assign_splits(self, clips):
        """{clip name: split name} for the builder's config."""

    def _split_generators(self, dl_manager):
        root = resolve_manual_dir(dl_manager, self.name)
        clips = self._find_clips(root)
        split_of = self._assign_splits(clips)
        by_split = {split: [] for split in self._split_names()}
        for clip in clips:
            by_split[split_of[clip.name]].append(clip)
        empty = [split for split, members in by_split.items() if not members]
        if empty:
            raise layout_error(
                self.name,
                root,
                f"the {self.builder_config.name!r} protocol finds no clips for split(s) {empty}",
                self.MANUAL_DOWNLOAD_INSTRUCTIONS,
            )
        return {split: self._generate_examples(clips) for split, clips in by_split.items()}

    def _generate_examples(self, clips):
        for clip in clips:
            frames = read_clip_frames(self.name, clip.name, clip.path, self.ENCODING_FORMAT)
            if frames is not None:
                yield clip.name, {"video": frames, "label": clip.label, "clip_name": clip.name, **clip.features}


def layout_error(dataset_name, folder, problem, instructions):
    """A DatasetLayoutError that names the data set, the folder and the expected layout."""
    return DatasetLayoutError(
        f"{dataset_name}: {problem} (looked in {folder}).\n\nExpected layout:\n{instructions.strip()}"
    )


def resolve_manual_dir(dl_manager, dataset_name):
    """The folder that holds a data set's files: `<manual_dir>/<dataset_name>` when it exists, so that
    several data sets can share TFDS's default manual folder, otherwise the manual folder itself."""
    try:
        manual_dir = epath.Path(dl_manager.manual_dir)
    except AssertionError as err:
        # TFDS asserts when the folder is missing or empty; its message already names the folder and
        # repeats the instructions, so keep it and make it catchable as a layout problem.
        raise DatasetLayoutError(f"{dataset_name}: {err}") from err
    nested = manual_dir / dataset_name
    return nested if nested.is_dir() else manual_dir


def subfolders(folder):
    """The non-hidden subfolders of `folder`, in natural order."""
    return sorted(
        (p for p in epath.Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )


def natural_key(name):
    """Sort key that orders embedded numbers by value ("frame2" before "frame10"); for zero-padded
    names it gives the same order as plain string sorting."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def list_frames(clip_folder):
    """The image files of a clip folder, in natural file-name order (the frames' time order)."""
    return sorted(
        (
            p
            for p in epath.Path(clip_folder).iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        ),
        key=lambda p: natural_key(p.name),
    )


def skip_clip(dataset_name, clip_name, reason):
    """Warn that a clip is left out of the data set, naming it and saying why."""
    warnings.warn(f"{dataset_name}: skipped clip {clip_name}: {reason}", stacklevel=3)


def read_clip_frames(dataset_name, clip_name, clip_folder, encoding_format):
    """The frames of one clip in a form `tfds.features.Video(encoding_format=...)` stores, or None
    (after a warning naming the clip) when the clip has no frames or any frame cannot be used."""
    frame_paths = list_frames(clip_folder)
    if not frame_paths:
        skip_clip(dataset_name, clip_name, f"no image files in {clip_folder}")
        return None
    frames = []
    sizes = set()
    for path in frame_paths:
        try:
            frame, size = _read_frame(path, encoding_format)
        except Exception as err:  # noqa: BLE001  (any decoder failure means the same: unusable frame)
            skip_clip(dataset_name, clip_name, f"cannot decode frame {path}: {err}")
            return None
        frames.append(frame)
        sizes.add(size)
    if len(sizes) > 1:
        skip_clip(dataset_name, clip_name, f"frames differ in size {sorted(sizes)} in {clip_folder}")
        return None
    return frames


def _read_frame(path, encoding_format):
    """(frame, (height, width)) where frame is the file's bytes if already in `encoding_format`, else
    an RGB uint8 array for TFDS to encode. Raises if the image cannot be decoded completely."""
    data = path.read_bytes()
    if data.startswith(_SIGNATURES[encoding_format]):
        # Decode with the very decoder that reads the data set back, so that what passes here is
        # what tfds.features.Image can decode.
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return data, tuple(image.shape[:2])
    with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return array, array.shape[:2]
