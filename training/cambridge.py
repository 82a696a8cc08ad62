"""`cambridge_hand_gesture`: TFDS builder for the Cambridge Hand Gesture data set, from a manual download.

Kim, Wong and Cipolla (CVPR 2007): 900 clips of 9 gesture classes (3 hand shapes x 3 motions), 20
clips per class under each of 5 illumination sets. The data set cannot be downloaded automatically;
MANUAL_DOWNLOAD_INSTRUCTIONS below says where to put it. Two folder layouts are read, the original one
and the PixelRNN authors' flattened copy, and both give the same clips under the same names:
Set{s}_{c}_{nnnn}, with s the illumination set, c the class 1..9 and nnnn the clip number.

Class c is the c-th gesture folder of a set, counting in sorted order (numeric names by value), so
the original folders 0000..0008 are classes 1..9 and label c - 1; the authors' class folders 1..9 are
taken to be the same classes in the same order. Which folder holds which shape and motion is not
recorded here, so the labels are named gesture_1..gesture_9.

Each example stores the whole clip at its original size and length (`video`, uint8 RGB), not the 16
sampled 64x64 frames a model sees: which frames are sampled depends on training or evaluation and,
in training, on chance every epoch (see training/preprocess.py). `tfds.features.Video` holds a
sequence of encoded images of any length and size; the frames keep their original JPEG bytes, and
the input pipeline reads them undecoded and decodes only the sampled ones. Configs (TFDS prepares
each one separately, so each keeps its own copy of the frames):
    cambridge_hand_gesture/pixelrnn   train 720 / validation 90 / test 90, the PixelRNN split
    cambridge_hand_gesture/standard   train = Set5 (180 clips), test = Sets 1-4 (720 clips); the
                                      `illumination_set` feature selects one test set
"""

import re

import numpy as np

from pixelrnn_tf._keras import tf  # noqa: F401  (must precede tensorflow_datasets: it selects Keras 2)
import tensorflow_datasets as tfds  # noqa: E402

from training import splits  # noqa: E402
from training.clip_folders import Clip, ClipFolderBuilder, layout_error, skip_clip, subfolders  # noqa: E402

NAME = "cambridge_hand_gesture"
NUM_CLASSES = 9
CLASS_NAMES = tuple(f"gesture_{c}" for c in range(1, NUM_CLASSES + 1))

MANUAL_DOWNLOAD_INSTRUCTIONS = """
Get the Cambridge Hand Gesture data set (Kim, Wong and Cipolla, 2007) from its authors and unpack it
into the TFDS manual folder (DownloadConfig(manual_dir=...), by default
<data_dir>/downloads/manual), either directly or in a subfolder named cambridge_hand_gesture.
Either layout is read:

  original layout                      PixelRNN authors' layout
  Set1/ ... Set5/   illumination set   1/ ... 9/            class
    0000/ ... 0008/ gesture, 9 folders   Set{s}_{c}_{nnnn}/ clip: set s, class c, number nnnn
      0000/ ... 0019/ clip                 frame-0000.jpg ...
        frame-0000.jpg ...

Gesture folder k in sorted order (numeric names by value) is class k + 1. Frames are the image files
of a clip folder (jpg, png, bmp, pgm/ppm, tif) in file-name order.
"""

_SET_FOLDER = re.compile(r"^Set(\d+)$")
_FLAT_CLIP_FOLDER = re.compile(r"^Set(\d+)_(\d+)_(\d+)$")


def clip_name(illumination_set, gesture_class, number):
    """Set{s}_{c}_{nnnn}, the clip name the PixelRNN split lists (class c counted from 1)."""
    return f"Set{illumination_set}_{gesture_class}_{number:04d}"


def find_clips(root):
    """The clips under `root` in either layout, as `Clip`s; raises DatasetLayoutError if `root` holds
    neither."""
    folders = subfolders(root)
    names = [folder.name for folder in folders]
    if folders and all(_SET_FOLDER.match(name) for name in names):
        return _original_layout_clips(root, folders)
    if folders and all(name.isdigit() and 1 <= int(name) <= NUM_CLASSES for name in names):
        return _flat_layout_clips(folders)
    raise layout_error(
        NAME,
        root,
        f"expected folders Set1..Set5 or 1..9, found {names or 'no folders'}",
        MANUAL_DOWNLOAD_INSTRUCTIONS,
    )


def _original_layout_clips(root, set_folders):
    clips = []
    for set_folder in set_folders:
        illumination_set = int(_SET_FOLDER.match(set_folder.name).group(1))
        gestures = subfolders(set_folder)
        if len(gestures) != NUM_CLASSES:
            raise layout_error(
                NAME,
                set_folder,
                f"{set_folder.name} must hold {NUM_CLASSES} gesture folders, found "
                f"{[g.name for g in gestures]}",
                MANUAL_DOWNLOAD_INSTRUCTIONS,
            )
        for label, gesture in enumerate(gestures):
            for clip_folder in subfolders(gesture):
                if not clip_folder.name.isdigit():
                    skip_clip(NAME, clip_folder, "a clip folder's name must be its number")
                    continue
                name = clip_name(illumination_set, label + 1, int(clip_folder.name))
                clips.append(_clip(name, label, illumination_set, clip_folder))
    return clips


def _flat_layout_clips(class_folders):
    clips = []
    for class_folder in class_folders:
        for clip_folder in subfolders(class_folder):
            match = _FLAT_CLIP_FOLDER.match(clip_folder.name)
            if not match or int(match.group(2)) != int(class_folder.name):
                expected = f"Set{{s}}_{class_folder.name}_{{nnnn}}"
                skip_clip(NAME, clip_folder, f"class folder {class_folder.name} holds folders named {expected}")
                continue
            illumination_set, gesture_class, number = (int(group) for group in match.groups())
            name = clip_name(illumination_set, gesture_class, number)
            clips.append(_clip(name, gesture_class - 1, illumination_set, clip_folder))
    return clips


def _clip(name, label, illumination_set, path):
    return Clip(name=name, label=label, path=path, features={"illumination_set": illumination_set})


class CambridgeHandGesture(ClipFolderBuilder):
    """Cambridge Hand Gesture clips at full size and length; see the module docstring."""

    name = NAME
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    ENCODING_FORMAT = "jpeg"  # the data set's own frames are JPEG: stored as they are
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(
            name="pixelrnn",
            description="PixelRNN authors' split: 90 validation and 90 test clips, the other 720 train.",
        ),
        tfds.core.BuilderConfig(
            name="standard",
            description="Kim et al. (2007) protocol: Set5 (plain light) trains, Sets 1-4 test.",
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "pixelrnn"

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Cambridge Hand Gesture data set (Kim, Wong and Cipolla 2007): 900 RGB clips of 9 "
                "hand gestures (3 shapes x 3 motions) under 5 illumination sets, at their original "
                "size and length."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "video": tfds.features.Video(shape=(None, None, None, 3), encoding_format=self.ENCODING_FORMAT),
                    "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                    "clip_name": tfds.features.Text(),
                    "illumination_set": tfds.features.Scalar(dtype=np.int32),
                }
            ),
            supervised_keys=("video", "label"),
            citation=(
                "@inproceedings{kim2007tensor,\n"
                "  title={Tensor Canonical Correlation Analysis for Action Classification},\n"
                "  author={Kim, Tae-Kyun and Wong, Shu-Fai and Cipolla, Roberto},\n"
                "  booktitle={IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},\n"
                "  year={2007}\n}"
            ),
        )

    def _find_clips(self, root):
        return find_clips(root)

    def _split_names(self):
        return ("train", "validation", "test") if self.builder_config.name == "pixelrnn" else ("train", "test")

    def _assign_splits(self, clips):
        if self.builder_config.name == "pixelrnn":
            return splits.cambridge_pixelrnn_split([clip.name for clip in clips])
        return {clip.name: splits.cambridge_standard_split(clip.features["illumination_set"]) for clip in clips}
