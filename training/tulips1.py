"""`tulips1`: TFDS builder for the Tulips1 lip-reading data set, from a manual download.

Movellan (NIPS 1995): 12 speakers each say the digits "one" to "four" twice, 96 greyscale clips of
the mouth region, 4 classes. The data set cannot be downloaded automatically;
MANUAL_DOWNLOAD_INSTRUCTIONS below says where to put it. A clip is named "{digit}/{speaker}{take}"
(e.g. "1/Anthony1"), its folder's path under the manual folder; the speaker and the take are stored
as features too.

Each example stores the whole clip at its original size and length (`video`, greyscale replicated to
RGB uint8, so the same preprocessing serves both real data sets); the 16 frames a model sees are
sampled later (see training/preprocess.py). Frames are stored as PNG, losslessly. Configs:
    tulips1/pixelrnn          the PixelRNN authors' 10 test clips (training/data/tulips1_split.json);
                              of the other 86, per class 10% validation (seeded, see
                              training/splits.py), the rest train: 78 / 8 / 10 clips.
    tulips1/stratified        per class 80/10/10 train/validation/test, seeded and stratified:
                              20/2/2 clips per class (the split of pixelrnn-tf 0.1).
    tulips1/speaker_fold_k    k = 0..3: the speakers in name order cut into 4 groups of 3; group k
                              tests (24 clips) and the other 9 speakers train (72 clips). No speaker
                              is ever on both sides, so the score measures generalisation to new
                              speakers.
"""

import dataclasses
import re

import numpy as np

from pixelrnn_tf._keras import tf  # noqa: F401  (must precede tensorflow_datasets: it selects Keras 2)
import tensorflow_datasets as tfds  # noqa: E402

from training import splits  # noqa: E402
from training.clip_folders import Clip, ClipFolderBuilder, layout_error, skip_clip, subfolders  # noqa: E402

NAME = "tulips1"
CLASS_NAMES = ("one", "two", "three", "four")
DIGIT_FOLDERS = ("1", "2", "3", "4")
NUM_SPEAKER_FOLDS = 4
PIXELRNN_SPLIT_SEED = 0

MANUAL_DOWNLOAD_INSTRUCTIONS = """
Get the Tulips1 data set (Movellan, 1995) and unpack it into the TFDS manual folder
(DownloadConfig(manual_dir=...), by default <data_dir>/downloads/manual), either directly or in a
subfolder named tulips1, laid out as:

  1/ 2/ 3/ 4/                 the digit spoken ("one" .. "four")
    <Speaker><take>/          one clip, e.g. Anthony1, Anthony2, Ben1, ...
      frame001.pgm ...        its frames (pgm, png, jpg, bmp or tif) in file-name order
"""

_CLIP_FOLDER = re.compile(r"^(\D+)(\d+)$")


def find_clips(root):
    """The clips under `root` as `Clip`s; raises DatasetLayoutError unless `root` holds the four digit
    folders."""
    folders = {folder.name: folder for folder in subfolders(root)}
    if sorted(folders) != sorted(DIGIT_FOLDERS):
        raise layout_error(
            NAME,
            root,
            f"expected exactly the folders {list(DIGIT_FOLDERS)}, found {sorted(folders) or 'no folders'}",
            MANUAL_DOWNLOAD_INSTRUCTIONS,
        )
    clips = []
    for label, digit in enumerate(DIGIT_FOLDERS):
        for clip_folder in subfolders(folders[digit]):
            match = _CLIP_FOLDER.match(clip_folder.name)
            if not match:
                skip_clip(NAME, clip_folder, "a clip folder is named <Speaker><take>, e.g. Anthony1")
                continue
            speaker, take = match.group(1), int(match.group(2))
            clips.append(
                Clip(
                    name=f"{digit}/{clip_folder.name}",
                    label=label,
                    path=clip_folder,
                    features={"speaker": speaker, "take": take},
                )
            )
    return clips


@dataclasses.dataclass(eq=False)
class Tulips1Config(tfds.core.BuilderConfig):
    """`split_rule`: pixelrnn (the authors' test clips), stratified, or speaker_fold with
    `speaker_fold` the fold of speakers held out for testing."""

    split_rule: str = "pixelrnn"
    speaker_fold: int | None = None


class Tulips1(ClipFolderBuilder):
    """Tulips1 clips at full size and length; see the module docstring."""

    name = NAME
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "1.1.0": "tulips1/pixelrnn tests on the PixelRNN authors' 10 clips; the old split is tulips1/stratified.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    ENCODING_FORMAT = "png"  # the data set's frames are PGM: decoded once, stored losslessly
    BUILDER_CONFIGS = [
        Tulips1Config(
            name="pixelrnn",
            description="The PixelRNN authors' 10 test clips; per class 10% of the rest validate.",
        ),
        Tulips1Config(
            name="stratified",
            description="Per class 80/10/10 train/validation/test, stratified and seeded.",
            split_rule="stratified",
        ),
        *(
            Tulips1Config(
                name=f"speaker_fold_{fold}",
                description=f"Speaker group {fold} of {NUM_SPEAKER_FOLDS} (speakers in name order) tests, "
                "the other speakers train.",
                split_rule="speaker_fold",
                speaker_fold=fold,
            )
            for fold in range(NUM_SPEAKER_FOLDS)
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "pixelrnn"

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Tulips1 lip-reading data set (Movellan 1995): 96 greyscale clips of 12 speakers "
                "saying 'one' to 'four' twice, at their original size and length."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "video": tfds.features.Video(shape=(None, None, None, 3), encoding_format=self.ENCODING_FORMAT),
                    "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                    "clip_name": tfds.features.Text(),
                    "speaker": tfds.features.Text(),
                    "take": tfds.features.Scalar(dtype=np.int32),
                }
            ),
            supervised_keys=("video", "label"),
            citation=(
                "@inproceedings{movellan1995visual,\n"
                "  title={Visual Speech Recognition with Stochastic Networks},\n"
                "  author={Movellan, Javier R.},\n"
                "  booktitle={Advances in Neural Information Processing Systems 7},\n"
                "  year={1995}\n}"
            ),
        )

    def _find_clips(self, root):
        return find_clips(root)

    def _split_names(self):
        return ("train", "test") if self.builder_config.split_rule == "speaker_fold" else ("train", "validation", "test")

    def _assign_splits(self, clips):
        rule, fold = self.builder_config.split_rule, self.builder_config.speaker_fold
        labels = {clip.name: clip.label for clip in clips}
        if rule == "pixelrnn":
            return splits.tulips1_pixelrnn_split(labels, seed=PIXELRNN_SPLIT_SEED)
        if rule == "stratified":
            return splits.stratified_split(labels, seed=PIXELRNN_SPLIT_SEED)
        speakers = [clip.features["speaker"] for clip in clips]
        split_of_speaker = splits.speaker_fold_split(speakers, fold, NUM_SPEAKER_FOLDS)
        return {clip.name: split_of_speaker[clip.features["speaker"]] for clip in clips}
