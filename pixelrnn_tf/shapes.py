"""Shape checks for clips, with errors that say what was expected and how to fix it."""


def check_clip_shape(shape, height, width, channels, window):
    """Raise ValueError unless `shape` is (batch, T, height, width, channels) with T % window == 0."""
    shape = tuple(shape)
    expected = f"(batch, T, {height}, {width}, {channels}) with T a multiple of K={window}"
    if len(shape) != 5:
        raise ValueError(
            f"Clips must be a rank-5 tensor {expected}; got rank {len(shape)} with shape {shape}. "
            "Add the missing axes, e.g. clips[..., None] for a missing channel axis."
        )
    _, frames, h, w, c = shape
    if (h is not None and h != height) or (w is not None and w != width):
        raise ValueError(
            f"Clips must be {expected}; got frames of {h}x{w}. Resize the frames to "
            f"{height}x{width} (the training pipeline does this) or build the model with "
            f"height={h}, width={w}."
        )
    if c is not None and c != channels:
        raise ValueError(f"Clips must be {expected}; got {c} channels. Convert frames to greyscale.")
    if frames is not None and frames % window != 0:
        raise ValueError(
            f"Clips must be {expected}; got T={frames}, which is not a multiple of K={window}. "
            f"Use T = {max(window, frames // window * window)} frames or change the readout window K."
        )
