"""Which clips of the real data sets are for training, validation and testing.

Each rule is a pure function of clip names, labels or speakers, so a split comes out the same on every
machine and with every library version, and can be checked without any images.

Cambridge Hand Gesture (900 clips, named Set{s}_{c}_{nnnn}):
    pixelrnn   the PixelRNN authors' own split, shipped as data/cambridge_split.json: 90 validation
               and 90 test clips (10% each, stratified per class), train = the other 720.
    standard   Kim, Wong and Cipolla (2007): Set5 (plain illumination) trains, Sets 1-4 test.
Tulips1 (96 clips, 12 speakers x 4 digits x 2 takes):
    pixelrnn           the PixelRNN authors' 10 test clips (their names are in the intermediates of
                       their simulator), shipped as data/tulips1_split.json; of the other 86, per
                       class 10% validation by the seeded hash below, the rest train.
    stratified_split   per class, 10% validation and 10% test, chosen by a seeded hash (below).
    speaker folds      the speakers in name order cut into `num_folds` contiguous groups; fold k
                       tests on group k and trains on the rest, so no speaker is on both sides.
"""

import hashlib
import importlib.resources
import json
import math

CAMBRIDGE_SPLIT_FILE = "cambridge_split.json"
CAMBRIDGE_TRAIN_SET = 5
TULIPS1_SPLIT_FILE = "tulips1_split.json"


def cambridge_pixelrnn_held_out():
    """The PixelRNN authors' held-out Cambridge clips: {"validation": names, "test": names}."""
    text = importlib.resources.files(__package__).joinpath("data", CAMBRIDGE_SPLIT_FILE).read_text()
    listed = json.loads(text)
    return {"validation": frozenset(listed["val"]), "test": frozenset(listed["test"])}


def cambridge_pixelrnn_split(clip_names):
    """{clip name: split} under the PixelRNN authors' split; clips they did not hold out train."""
    held_out = cambridge_pixelrnn_held_out()
    return {
        name: next((split for split, names in held_out.items() if name in names), "train")
        for name in clip_names
    }


def cambridge_standard_split(illumination_set):
    """Kim et al. (2007): the plain-illumination Set5 trains, Sets 1-4 test."""
    return "train" if illumination_set == CAMBRIDGE_TRAIN_SET else "test"


def tulips1_pixelrnn_test():
    """The PixelRNN authors' 10 Tulips1 test clips, as "<digit>/<speaker><take>" names."""
    text = importlib.resources.files(__package__).joinpath("data", TULIPS1_SPLIT_FILE).read_text()
    return frozenset(json.loads(text)["test"])


def tulips1_pixelrnn_split(labels, *, validation=0.1, seed=0):
    """{clip name: split} for {clip name: label}: the authors' test clips test; of the rest, per
    class `validation` of the clips (seeded hash order, as stratified_split) validate."""
    test = tulips1_pixelrnn_test()
    missing = sorted(test - set(labels))
    if missing:
        raise ValueError(f"The authors' Tulips1 test clips {missing} are not in the data set folder.")
    others = {name: label for name, label in labels.items() if name not in test}
    rest = stratified_split(others, validation=validation, test=0.0, seed=seed)
    return {**rest, **{name: "test" for name in test}}


def stratified_split(labels, *, validation=0.1, test=0.1, seed=0):
    """{clip name: split} for {clip name: label}, stratified per class.

    Within each class, the clips are ordered by SHA-256 of f"{seed}/{name}" (a shuffle that no
    library upgrade can change); the first round(test * n) go to "test", the next
    round(validation * n) to "validation", the rest to "train", rounding halves up. For a Tulips1
    class of 24 clips that is 2 test, 2 validation and 20 train clips.
    """
    by_class = {}
    for name, label in labels.items():
        by_class.setdefault(label, []).append(name)
    assignment = {}
    for names in by_class.values():
        names.sort(key=lambda name: hashlib.sha256(f"{seed}/{name}".encode()).hexdigest())
        num_test = math.floor(test * len(names) + 0.5)
        num_validation = math.floor(validation * len(names) + 0.5)
        for position, name in enumerate(names):
            if position < num_test:
                assignment[name] = "test"
            elif position < num_test + num_validation:
                assignment[name] = "validation"
            else:
                assignment[name] = "train"
    return assignment


def speaker_folds(speakers, num_folds):
    """The distinct speakers in name order, cut into `num_folds` contiguous groups whose sizes differ
    by at most one (12 Tulips1 speakers, 4 folds: 3 speakers each)."""
    ordered = sorted(set(speakers))
    if len(ordered) < num_folds:
        raise ValueError(f"{len(ordered)} speakers cannot fill {num_folds} folds: {ordered}")
    base, extra = divmod(len(ordered), num_folds)
    folds, start = [], 0
    for fold in range(num_folds):
        size = base + (fold < extra)
        folds.append(tuple(ordered[start : start + size]))
        start += size
    return folds


def speaker_fold_split(speakers, fold, num_folds):
    """{speaker: split} for fold `fold` of `speaker_folds(speakers, num_folds)`: the fold's speakers
    test, every other speaker trains."""
    test_speakers = speaker_folds(speakers, num_folds)[fold]
    return {speaker: ("test" if speaker in test_speakers else "train") for speaker in set(speakers)}
