"""One object that describes an in-pixel model; everything the builder needs and nothing else.

Unknown keys are an error (a typo in a config file must not silently train the default model).
"""

import dataclasses
import difflib
import json
from typing import Optional, Union

from pixelrnn_tf.cells import CELLS
from pixelrnn_tf.decoders import DECODERS
from pixelrnn_tf.quantizers import QUANTIZERS

QuantizerSpec = Union[str, dict]
# the cameras read frames out as they are: no in-pixel CNN before them
CAMERA_ARCHS = ("raw", "diff")


class ConfigError(ValueError):
    """A model or run configuration that cannot be built, with the reason and the fix."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture and training-time options of an in-pixel model.

    arch: pixelrnn, convlstm, convgru, mgu, srnn (recurrent cells on the binary CNN's output),
        cnn (the CNN alone, read out at the window's last frame) or raw, diff (conventional and
        difference cameras on the frames, no CNN).
    cnn_layers: 1 or 2 binary CNN layers (ignored for raw and diff).
    binary: binary weights and activations in the pixel array (False: full precision).
    frames, window: clip length T and readout window K (state reset and readout every K frames).
    kernel_quantizer, activation_quantizer: a name from pixelrnn_tf.quantizers.QUANTIZERS or a
        dict {"name": ..., **options}, e.g. {"name": "tanh_sign", "m": 2.0}.
    zero_point: learn a zero-point per kernel, w = q(w~ - zeta).
    learned_input_threshold: binarise input frames at a learned threshold instead of 0.
    cnn_threshold_init: initial CNN threshold theta (model units).
    cnn_batchnorm: BatchNorm after each binary convolution and a learned threshold per channel
        (Liu et al. 2022); on the sensor they fold into one level per channel.
    forget_threshold: PixelRNN only: learn a threshold subtracted before the forget gate.
    output_threshold: PixelRNN only: ternary output psi_o with this threshold delta (None: linear).
    diff_threshold: difference camera threshold delta.
    cnn_noise_stddev, gate_noise_stddev, readout_noise_stddev: analog noise before the CNN
        threshold, before gate thresholds, on the readout.
    noise_at_inference: keep that noise on outside training.
    readout_pool: max-pool the readout on the sensor by this factor (1 .. 64); floor pooling, so
        a pool that does not divide 64 drops the last rows and columns (3: 21x21 values).
    rnn_input_pool: max-pool the CNN's tiled output (RAW, DIFF: the frames) by this factor before
        the recurrent cell, so the cell's state and the readout shrink together (the PixelRNN
        paper's text; its authors' code pools the readout instead). Floor pooling as above.
    decoder: linear or reference. num_classes: decoder outputs.
    """

    arch: str = "pixelrnn"
    cnn_layers: int = 1
    binary: bool = True
    frames: int = 16
    window: int = 16
    height: int = 64
    width: int = 64
    filters: int = 16
    kernel_size: int = 5
    pool_size: int = 4
    kernel_quantizer: QuantizerSpec = "tanh_sign"
    activation_quantizer: QuantizerSpec = "tanh_sign"
    zero_point: bool = False
    learned_input_threshold: bool = False
    cnn_threshold_init: float = 0.5
    cnn_batchnorm: bool = False
    forget_threshold: bool = False
    output_threshold: Optional[float] = None
    diff_threshold: float = 0.1
    cnn_noise_stddev: float = 0.0
    gate_noise_stddev: float = 0.0
    readout_noise_stddev: float = 0.0
    noise_at_inference: bool = False
    readout_pool: int = 1
    rnn_input_pool: int = 1
    decoder: str = "linear"
    num_classes: int = 9

    def __post_init__(self):
        _choice("arch", self.arch, CELLS)
        _choice("decoder", self.decoder, DECODERS)
        for name in ("kernel_quantizer", "activation_quantizer"):
            spec = getattr(self, name)
            _choice(name, spec["name"] if isinstance(spec, dict) else spec, QUANTIZERS)
        if self.cnn_layers not in (1, 2):
            raise ConfigError(f"cnn_layers must be 1 or 2, got {self.cnn_layers}.")
        for name in ("frames", "window", "height", "width", "filters", "kernel_size", "pool_size", "readout_pool", "rnn_input_pool"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}.")
        if self.frames % self.window:
            raise ConfigError(
                f"frames (T={self.frames}) must be a multiple of window (K={self.window}): the state "
                "is reset and read out every K frames."
            )
        for name in ("cnn_noise_stddev", "gate_noise_stddev", "readout_noise_stddev"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} is a standard deviation and must be >= 0, got {getattr(self, name)}.")
        side = min(self.height, self.width) // self.rnn_input_pool
        if side < 1:
            raise ConfigError(f"rnn_input_pool {self.rnn_input_pool} is larger than the {self.height}x{self.width} plane.")
        if self.readout_pool > side:
            raise ConfigError(
                f"readout_pool {self.readout_pool} is larger than the {side}x{side} readout plane; use at most {side}."
            )
        if self.filters != self.pool_size**2:
            raise ConfigError(
                f"filters ({self.filters}) must equal pool_size**2 ({self.pool_size**2}) so the pooled "
                "feature maps tile back into one frame-sized image."
            )
        if self.num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {self.num_classes}.")
        if self.arch != "pixelrnn" and (self.forget_threshold or self.output_threshold is not None):
            raise ConfigError("forget_threshold and output_threshold belong to the pixelrnn cell only.")

    @property
    def has_cnn(self):
        return self.arch not in CAMERA_ARCHS

    @classmethod
    def from_dict(cls, values):
        """Build from a mapping; unknown keys raise ConfigError naming the nearest known key."""
        return dataclass_from_dict(cls, values, "model config")

    @classmethod
    def from_any(cls, config=None, **overrides):
        if config is None:
            config = {}
        if isinstance(config, cls):
            config = config.to_dict()
        return cls.from_dict({**config, **overrides})

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def dataclass_from_dict(cls, values, where):
    """cls(**values), after checking that every key is a field of cls; a typo is named with the
    nearest known key."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = [key for key in values if key not in known]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"Unknown {where} key(s): {', '.join(hints)}. Known keys: {', '.join(sorted(known))}.")
    return cls(**values)


def _choice(name, value, options):
    if value not in options:
        close = difflib.get_close_matches(str(value), list(options), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown {name} {value!r}; choose one of {', '.join(options)}.{hint}")
