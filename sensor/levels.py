"""Comparator levels: the one rule that turns a model's threshold into the level at which the
sensor compares an analog value. The compiler's programs compare at these levels and the exporter
writes these levels into the weight tables a chip loads, so the chip, the emulated program and
the Keras model decide alike.

Counts. A CNN or recurrent pre-activation is an integer count c (a sum of +-1 products); on the
array it is the analog value white * c. A threshold theta passes c >= theta, i.e. c >= n with
n = ceil(theta), the first passing count. The level is the integer

    L = ceil(white * (n - 1/2))

half-way between the last failing value white (n - 1) and the first passing one white n, moved
up onto the integer grid of the array's constants: exact without noise, and with the largest
margin, about white / 2, against it. The PixelRNN authors' table writes round(theta * white),
which is exact only when theta lies within half a count below an integer: for theta = 2.04 and
white = 10 it gives 20, which passes c = 2 where the model does not.
After a ReLU (the CNN: q = sign(maxpool(relu(c)) - theta)) a threshold theta <= 0 always passes:
there is no level (None) and the program sets the bit.

The input frame. The input binarisation b = sign(x - theta_in) compares the sampled frame,
input_scale * x, with input_scale * theta_in: an analog value, not a count.
"""

import math

from sensor.errors import CompileError

NEVER = "never"  # a BatchNorm-folded channel that no count passes


def count_level(theta, white, relu=False):
    """The integer level L with white * c >= L exactly when the count c >= theta, for every integer
    c; None when relu is set and theta <= 0 (every count passes after the ReLU)."""
    if white < 1:
        raise CompileError(f"A white of {white:g} sensor units per count is below 1: two counts would share a level.")
    first = math.ceil(float(theta))
    if relu and first <= 0:
        return None
    return math.ceil(white * (first - 0.5))


def frame_level(theta, input_scale):
    """The level the sampled frame (input_scale units per model unit) is compared at."""
    return float(theta) * float(input_scale)


def checked_count_level(name, theta, white, config, relu=False, option="--input-white"):
    """count_level, refused with a CompileError that names the fix when the level lies outside the
    array's analog range (a saturated register would then pass or fail regardless)."""
    level = count_level(theta, white, relu)
    if level is None or _in_range(level, config):
        return level
    fits = next((w for w in range(int(white), 0, -1) if _in_range(count_level(theta, w, relu), config)), None)
    fix = f"use {option} {fits} or less" if fits else "no white can represent it: lower the threshold"
    raise CompileError(
        f"Threshold {name} = {float(theta):.6g} is {level} in sensor units at {option.lstrip('-')} {white:g}, outside "
        f"{config.name}'s analog range [{config.analog_min:g}, {config.analog_max:g}]; {fix}."
    )


def checked_frame_level(name, theta, input_scale, config):
    level = frame_level(theta, input_scale)
    if not _in_range(level, config):
        raise CompileError(
            f"Threshold {name} = {float(theta):.6g} is {level:g} in sensor units (input scale {input_scale:g}), outside "
            f"{config.name}'s analog range [{config.analog_min:g}, {config.analog_max:g}]."
        )
    return level


def _in_range(level, config):
    # the lowest value is excluded: an accumulator clipped there could have been lower
    return config.analog_min < level <= config.analog_max


def checked_ternary_levels(name, delta, white, config, option="--recurrent-white"):
    """(L+, L-) of a ternary output ternary(c, delta) on whole counts c: +1 where white * c >= L+
    (c > delta), -1 where white * c < L- (c < -delta), 0 between."""
    delta = float(delta)
    return (
        checked_count_level(name, math.floor(delta) + 1, white, config, option=option),
        checked_count_level(f"-{name}", -delta, white, config, option=option),
    )


def checked_channel_levels(name, first_counts, white, config):
    """The levels of a BatchNorm-folded layer (pixelrnn_tf.tables.ChannelLevels): per channel the
    level of its first passing count, None where every count passes, NEVER where none does."""
    levels = []
    for k, first in enumerate(first_counts):
        if math.isinf(first):
            levels.append(None if first < 0 else NEVER)
        else:
            levels.append(checked_count_level(f"{name}[{k}] (BatchNorm folded)", first, white, config))
    return levels
