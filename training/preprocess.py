"""Turning a stored clip into model input the way the PixelRNN authors did, as tf.data-ready functions.

A real-data-set example holds a whole clip (N frames, original size, RGB). A model sees 16 greyscale
64x64 frames, made by these steps, in this order (the authors' PyTorch data loader, So et al. 2024):

1. Frame sampling. Base indices i_k = floor(k * N / 16), k = 0..15 (numpy.linspace(0, N, 16,
   endpoint=False) cast to int). They span frames 0..i_15; the slack s = N - 1 - i_15 is how far the
   window can move and stay inside the clip. Evaluation takes offset s, so the window ends on the
   clip's last frame; training takes an offset drawn uniformly from 0..s, anew every epoch. N = 40:
   i = 0, 2, 5, 7, ..., 35, 37, s = 2. A clip shorter than 16 frames has s = 0 and its indices repeat
   frames (N = 8: 0, 0, 1, 1, ..., 7, 7).
2. Training only, each frame on its own (as torchvision's RandomAffine did, called once per frame):
   shift by a whole number of pixels, dx = round(u * translate * width), u uniform in [-1, 1], dy
   likewise with the height, filling with black (0), before normalisation, as RandomAffine did.
3. x = (rgb - mean) / std per channel on [0, 1] pixels, ImageNet mean (0.485, 0.456, 0.406) and std
   (0.229, 0.224, 0.225). Greyscale frames are replicated to 3 channels first.
4. Grey = 0.2989 r + 0.587 g + 0.114 b of the normalised channels: ITU-R 601 luma with red rounded to
   0.2989 as torchvision's Grayscale (which the authors applied) rounds it.
5. Bilinear resize to 64x64 with half-pixel centres and no antialiasing: torch's bilinear resize with
   align_corners=False, which is what torchvision's Resize did to tensors before version 0.17 (the
   authors' loader dates from 2022; later versions antialias by default).

Steps 3-5 are affine per pixel and linear over pixels, so their order changes nothing but rounding;
it is kept as the authors had it.

`make_dataset` builds the whole tf.data pipeline for `cambridge_hand_gesture` and `tulips1`.
"""

from pixelrnn_tf._keras import tf  # must precede tensorflow_datasets: it selects Keras 2
import tensorflow_datasets as tfds  # noqa: E402

from training import cambridge, tulips1  # noqa: E402  (importing registers the TFDS builders)

NUM_FRAMES = 16
FRAME_SIZE = 64
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA_WEIGHTS = (0.2989, 0.587, 0.114)
CLASS_NAMES = {cambridge.NAME: cambridge.CLASS_NAMES, tulips1.NAME: tulips1.CLASS_NAMES}


def class_names(name):
    """The class names of a real data set, in label order; `name` may carry a "/config" suffix."""
    return list(CLASS_NAMES[name.split("/")[0]])


def base_frame_indices(num_frames, timesteps=NUM_FRAMES):
    """floor(k * num_frames / timesteps) for k = 0..timesteps-1, int32."""
    num_frames = tf.cast(num_frames, tf.int32)
    return tf.range(timesteps, dtype=tf.int32) * num_frames // timesteps


def frame_slack(num_frames, timesteps=NUM_FRAMES):
    """How far the sampled window can shift and stay in the clip: N - 1 - floor((T-1) * N / T)."""
    return tf.cast(num_frames, tf.int32) - 1 - base_frame_indices(num_frames, timesteps)[-1]


def sample_frame_indices(num_frames, *, training=False, seed=None, timesteps=NUM_FRAMES):
    """The frame indices a clip of `num_frames` frames contributes: the base indices shifted by the
    slack (evaluation: the window ends on the last frame) or by a uniform draw from 0..slack
    (training; `seed` is a stateless seed, shape (2,) int, or None for a stateful draw)."""
    slack = frame_slack(num_frames, timesteps)
    if not training:
        offset = slack
    elif seed is None:
        offset = tf.random.uniform([], minval=0, maxval=slack + 1, dtype=tf.int32)
    else:
        offset = tf.random.stateless_uniform([], seed, minval=0, maxval=slack + 1, dtype=tf.int32)
    return base_frame_indices(num_frames, timesteps) + offset


def random_translate(frames, fraction, seed):
    """Shift each frame of (T, H, W, C) `frames` on its own by a whole number of pixels, up to
    `fraction` of its width and height, filling with zeros. `seed`: stateless seed, shape (2,)."""
    frames = tf.convert_to_tensor(frames)
    shape = tf.shape(frames)
    max_shift = fraction * tf.cast(tf.stack([shape[2], shape[1]]), tf.float32)  # (x, y)
    shift = tf.round(tf.random.stateless_uniform([shape[0], 2], seed, minval=-1.0, maxval=1.0) * max_shift)
    ones = tf.ones([shape[0], 1])
    zeros = tf.zeros([shape[0], 1])
    # Each row maps an output pixel (x, y) to the input pixel (x - dx, y - dy).
    transforms = tf.concat([ones, zeros, -shift[:, :1], zeros, ones, -shift[:, 1:], zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=frames,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )


def normalize_grey(frames):
    """(..., H, W, 3 or 1) float frames on [0, 1] -> (..., H, W, 1): ImageNet normalisation, then
    luma of the normalised channels (steps 3-4 of the module docstring)."""
    frames = tf.convert_to_tensor(frames, tf.float32)
    if frames.shape[-1] == 1:
        frames = tf.tile(frames, [1] * (frames.shape.rank - 1) + [3])
    normalised = (frames - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)
    return tf.reduce_sum(normalised * tf.constant(LUMA_WEIGHTS), axis=-1, keepdims=True)


def preprocess_clip(frames, *, training=False, seed=None, translate=0.1, timesteps=NUM_FRAMES, size=FRAME_SIZE):
    """One stored clip -> model input (timesteps, size, size, 1) float32, by the module's steps 1-5.

    frames: the whole clip, either (N,) encoded images (JPEG/PNG bytes, as read with TFDS's
    SkipDecoding: only the sampled frames get decoded) or decoded (N, H, W, C), C = 1 or 3, uint8
    or float on [0, 1]. training: random window offset and translation instead of the end-aligned
    window. seed: stateless seed, shape (2,) int, for the training draws (None: stateful draws).
    translate: the largest shift as a fraction of the frame size; 0 turns translation off.
    """
    frames = tf.convert_to_tensor(frames)
    if training:
        if seed is None:
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        offset_seed, translate_seed = tf.unstack(tf.random.split(seed, 2))
    else:
        offset_seed = translate_seed = None
    indices = sample_frame_indices(tf.shape(frames)[0], training=training, seed=offset_seed, timesteps=timesteps)
    frames = tf.gather(frames, indices)
    if frames.dtype == tf.string:
        frames = tf.map_fn(
            lambda encoded: tf.io.decode_image(encoded, channels=3, expand_animations=False),
            frames,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
        )
    frames = tf.image.convert_image_dtype(frames, tf.float32)
    if training and translate > 0:
        frames = random_translate(frames, translate, translate_seed)
    grey = normalize_grey(frames)
    resized = tf.image.resize(grey, [size, size], method="bilinear", antialias=False)
    return tf.ensure_shape(resized, [timesteps, size, size, 1])


def prepared_builder(name, *, config=None, manual_dir=None, data_dir=None):
    """The TFDS builder of a real data set, prepared (from the manual folder on first use)."""
    builder = tfds.builder(name, data_dir=data_dir, **({} if config is None else {"config": config}))
    if builder.name not in CLASS_NAMES:
        raise ValueError(f"make_dataset reads {list(CLASS_NAMES)}, not {builder.name!r}")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder


def make_dataset(
    name,
    split,
    *,
    data_dir=None,
    manual_dir=None,
    config=None,
    training=False,
    batch_size=None,
    seed=0,
    translate=0.1,
    cache=True,
    timesteps=NUM_FRAMES,
    size=FRAME_SIZE,
):
    """A tf.data.Dataset of (clip (timesteps, size, size, 1) float32, label int32) from a real data set.

    name: "cambridge_hand_gesture" or "tulips1", optionally with "/<config>" (or pass `config`).
    split: a TFDS split ("train", "validation", "test", or a slice such as "train[:10%]").
    data_dir, manual_dir: TFDS's data folder and manual-download folder (None: TFDS's defaults). The
    data set is prepared on first use, which needs the manual folder; later calls only read.
    training: random window offsets and translations, fresh every epoch, and shuffling; otherwise
    the deterministic end-aligned window, in file order.
    batch_size: None yields single clips. seed: makes the shuffling and the random draws
    reproducible. translate: largest training shift as a fraction of the frame size.
    cache: True caches in memory, a string caches to that file, False does not cache. Training
    caches the stored (still encoded) clips, before anything random; evaluation caches the finished
    clips. timesteps, size: frames per clip and their side (the PixelRNN setting: 16 and 64).
    """
    builder = prepared_builder(name, config=config, manual_dir=manual_dir, data_dir=data_dir)
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=training,
        decoders={"video": tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False),
    )
    dataset = dataset.map(lambda example: (example["video"], tf.cast(example["label"], tf.int32)))
    cache_file = cache if isinstance(cache, str) else ""
    if training:
        if cache:
            dataset = dataset.cache(cache_file)
        dataset = dataset.shuffle(builder.info.splits[split].num_examples, seed=seed, reshuffle_each_iteration=True)

        def sample_and_augment(video_and_label, seed_pair):
            video, label = video_and_label
            clip = preprocess_clip(
                video, training=True, seed=seed_pair, translate=translate, timesteps=timesteps, size=size
            )
            return clip, label

        # One stateless seed per clip, new every epoch yet reproducible from `seed`: seeded random
        # ops inside map would replay the same draws every epoch, unseeded ones could not be replayed.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(sample_and_augment, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(
            lambda video, label: (preprocess_clip(video, timesteps=timesteps, size=size), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        if cache:
            dataset = dataset.cache(cache_file)
    if batch_size:
        dataset = dataset.batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)
