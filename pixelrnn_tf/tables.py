"""The in-pixel half of a trained model as plain numbers: the one reading of a Keras model that the
sensor compiler and the exporter share.

`in_pixel_tables(model)` takes the forward kernels (+-1 for a binary model, as the quantizers
return them), the thresholds in model units (counts of one binary input), the readout window and
pooling, and the training noise. Everything that depends on a sensor (its units, ranges and
comparator levels) is computed from these by `sensor` and `export`, not here.
"""

import dataclasses
import math
from typing import Mapping, Optional, Tuple

import numpy as np

from pixelrnn_tf.cells import arch_name
from pixelrnn_tf.encoders import fold_batchnorm
from pixelrnn_tf.models import ENCODER_LAYER, READOUT_LAYER, RECURRENCE_LAYER, RNN_INPUT_POOL_LAYER


class ChannelLevels(tuple):
    """A CNN layer's threshold folded from BatchNorm (encoders.fold_batchnorm): per channel the
    first whole count that passes, with no ReLU after it (-inf: every count, +inf: none); `signs`
    says which channels' kernels were flipped for it (a negative BatchNorm scale). A plain float
    threshold theta instead passes sign(maxpool(relu(c)) - theta)."""

    def __new__(cls, first, signs=None):
        levels = super().__new__(cls, (float(f) for f in first))
        levels.signs = tuple(float(s) for s in signs) if signs is not None else (1.0,) * len(levels)
        return levels


@dataclasses.dataclass(frozen=True)
class InPixelTables:
    """arch: the cell (ModelConfig.arch); binary: +-1 kernels and sign activations.
    cnn_kernels: per CNN layer a (k, k, 1, filters) float32 array; cnn_thresholds: per layer theta_l,
    or ChannelLevels (BatchNorm folded: the kernel's channels are then sign-flipped as it says);
    input_threshold: the learned input binarisation threshold (None: 0).
    pool_size: the CNN's max-pool; its filters = pool_size**2 maps tile column-major into one frame.
    cell_kernels: recurrent kernel name -> (k, k) array, gate by gate (w_g, u_g, ...).
    forget_threshold (PixelRNN's learned theta), output_threshold (ternary output delta),
    diff_threshold (difference camera delta): None where the model has none.
    window: K; readout_pool: on-sensor max-pool of the readout; readout_shape: (h, w, c) per window;
    frame_shape: (h, w) of the input frames.
    rnn_input_pool: the max-pool between the CNN and the cell (ModelConfig.rnn_input_pool).
    noise: the training noise stddevs (model units) and whether it stays on at inference."""

    arch: str
    binary: bool
    window: int
    cnn_kernels: Tuple[np.ndarray, ...] = ()
    cnn_thresholds: Tuple[float, ...] = ()
    input_threshold: Optional[float] = None
    pool_size: int = 4
    cell_kernels: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    forget_threshold: Optional[float] = None
    output_threshold: Optional[float] = None
    diff_threshold: Optional[float] = None
    readout_pool: int = 1
    rnn_input_pool: int = 1
    readout_shape: Tuple[int, ...] = ()
    frame_shape: Tuple[int, ...] = ()
    noise: Mapping[str, float] = dataclasses.field(default_factory=dict)
    noise_at_inference: bool = False
    model_name: str = ""

    @property
    def kernel_size(self):
        kernels = list(self.cnn_kernels) + list(self.cell_kernels.values())
        return int(kernels[0].shape[0]) if kernels else 5

    @property
    def grid(self):
        """Tiles per side of the tiled CNN output (4: 16 channels in a 4x4 grid)."""
        return math.isqrt(self.cnn_kernels[0].shape[-1]) if self.cnn_kernels else None


def _optional_layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _value(variable):
    return None if variable is None else float(np.asarray(variable))


def cell_kernel_names(cell):
    """A cell's kernels gate by gate: w and u of each gate in turn (PixelRNN: w_f, u_f, w_o, u_o)."""
    names = []
    for w, u in zip(cell.input_kernels, cell.hidden_kernels):
        names += [w, u]
    return tuple(names)


def in_pixel_tables(model):
    """The InPixelTables of a model built by `pixelrnn_tf.build_model` (or loaded from `.keras`)."""
    encoder = _optional_layer(model, ENCODER_LAYER)
    recurrence = model.get_layer(RECURRENCE_LAYER)
    readout = model.get_layer(READOUT_LAYER)
    cell = recurrence.cell
    noise = {"gate_noise_stddev": float(cell.gate_noise_stddev), "readout_noise_stddev": float(readout.noise_stddev)}
    cnn = {}
    if encoder is not None:
        kernels = [np.asarray(encoder.binary_kernel(l), np.float32) for l in range(encoder.num_layers)]
        thresholds = [_value(t) for t in encoder.thresholds] if not encoder.batchnorm else []
        if encoder.batchnorm:  # one first passing count per channel, on the sign-flipped kernel
            for layer in range(encoder.num_layers):
                signs, first = fold_batchnorm(encoder, layer)
                kernels[layer] = kernels[layer] * signs
                thresholds.append(ChannelLevels(first, signs))
        cnn = dict(
            cnn_kernels=tuple(kernels),
            cnn_thresholds=tuple(thresholds),
            input_threshold=_value(encoder.input_threshold),
            pool_size=int(encoder.pool_size),
        )
        noise["cnn_noise_stddev"] = float(encoder.noise_stddev)
    return InPixelTables(
        arch=arch_name(cell),
        binary=bool(cell.binary and (encoder is None or encoder.binary)),
        window=int(recurrence.window),
        cell_kernels={name: np.asarray(cell.kernel(name), np.float32)[:, :, 0, 0] for name in cell_kernel_names(cell)},
        forget_threshold=_value(getattr(cell, "theta", None)),
        output_threshold=getattr(cell, "output_threshold", None),
        diff_threshold=getattr(cell, "threshold", None) if arch_name(cell) == "diff" else None,
        readout_pool=int(readout.pool_size),
        rnn_input_pool=int(getattr(_optional_layer(model, RNN_INPUT_POOL_LAYER), "pool_size", 1)),
        readout_shape=tuple(int(d) for d in readout.output_shape[2:]),
        frame_shape=tuple(int(d) for d in model.input_shape[2:4]),
        noise=noise,
        noise_at_inference=bool(cell.noise_at_inference),
        model_name=model.name,
        **cnn,
    )
