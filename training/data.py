"""One entry point from a run's data config to batched tf.data pipelines for train/val/test."""

from pathlib import Path

from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError
from training import synthetic

PROTOCOLS_WITH_VALIDATION = ("pixelrnn", "stratified")


def _batched(dataset, batch_size, training, seed):
    if training:
        dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_splits(data_config, model_config, batch_size):
    """{"train", "val", "test"} -> batched datasets of (clips (B, T, H, W, 1), labels), and the
    class names."""
    from training import preprocess

    if data_config.dataset == "synthetic_gestures":
        if (model_config.height, model_config.width) != (synthetic.SIZE, synthetic.SIZE):
            raise ConfigError(f"synthetic_gestures renders {synthetic.SIZE}x{synthetic.SIZE} frames; set height and width to {synthetic.SIZE}.")
        sizes = {"train": data_config.train_clips, "val": data_config.val_clips, "test": data_config.test_clips}
        splits = {}
        for split, count in sizes.items():
            clips = synthetic.load_synthetic(
                {"val": "validation"}.get(split, split), count, seed=data_config.seed, frames=model_config.frames
            )
            clips = clips.map(lambda c, y: (preprocess.normalize_grey(c), y), num_parallel_calls=tf.data.AUTOTUNE)
            splits[split] = _batched(clips.cache(), batch_size, split == "train", data_config.seed)
        return splits, list(synthetic.CLASS_NAMES)

    if model_config.height != model_config.width:
        raise ConfigError("The real data sets are resized to square frames; set height equal to width.")
    # Protocols without a validation split (Cambridge standard, Tulips1 speaker folds) hold out the
    # last 10% of train for model selection, so the test split never picks the checkpoint.
    held_out = data_config.protocol not in PROTOCOLS_WITH_VALIDATION
    names = {
        "train": "train[:90%]" if held_out else "train",
        "val": "train[90%:]" if held_out else "validation",
        "test": "test",
    }
    splits = {}
    for split, tfds_split in names.items():
        splits[split] = preprocess.make_dataset(
            data_config.dataset,
            tfds_split,
            config=data_config.protocol,
            manual_dir=data_config.manual_dir,
            data_dir=data_config.data_dir,
            training=split == "train",
            batch_size=batch_size,
            seed=data_config.seed,
            translate=data_config.translate,
            timesteps=model_config.frames,
            size=model_config.height,
        )
    return splits, preprocess.class_names(data_config.dataset)


def prepare(data_config):
    """Make sure the data set of `data_config` can be read: generated ones need nothing; a real one
    is prepared from its manual folder once (TFDS), so a missing or empty folder fails now with the
    layout it expects, not when a run first reads it."""
    if data_config.dataset == "synthetic_gestures":
        return
    from training import preprocess

    if data_config.manual_dir is not None and not Path(data_config.manual_dir).is_dir():
        raise FileNotFoundError(
            f"No {data_config.dataset} data folder at {data_config.manual_dir}; pass the folder you "
            f"unpacked the data set into (--manual-dir); the README's data section gives the layout."
        )
    preprocess.prepared_builder(
        data_config.dataset, config=data_config.protocol, manual_dir=data_config.manual_dir, data_dir=data_config.data_dir
    )
