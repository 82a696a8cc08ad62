"""Import the PixelRNN authors' PyTorch checkpoints (So et al., CVPR 2024, official release) as
ordinary pixelrnn-tf models, and trace every intermediate stage of a clip the
way the authors' simulator dumps it.

The authors' model, per frame t (clip reset h = +1; `*` is a 5x5 cross-correlation, zero padding 2):
    b = sign(x_t);  c = W1 * b;  p = maxpool4x4(relu(c));  q = sign(p [+ n_cnn] - theta1);  x = tile(q)
    f = sign(w_f*x + u_f*h + eps);  o = w_o*x + u_o*h [+ n_o];  h <- sign(f . h)
    logits = fc(flatten_row_major(tanh(BN(s . o_T)) - thresh3))
The no-noise cell (`rnn_1_qt`) uses eps = +0.001: with +-1 kernels and +-1 inputs the
pre-activation is an integer, so sign(z + 0.001) is sign(z) with sign(0) = +1, which is what
pixelrnn-tf's forget gate computes; f . h is already +-1, so re-binarising h changes nothing. The
noise-trained cell (`rnn_1_mul_noise_fixed`) instead subtracts a learned threshold
(`rnn_model.rnn_threshold`) after adding N(0, 0.6^2) noise, and adds N(0, 1) to the output; its CNN
adds N(0, 0.6^2) before theta1. These map to forget_threshold=True and the three noise options.
"""

import dataclasses

import numpy as np

from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ModelConfig
from pixelrnn_tf.models import DECODER_LAYER, ENCODER_LAYER, RECURRENCE_LAYER, build_model
from pixelrnn_tf.torch_checkpoint import CheckpointError, UnsafeCheckpointError, read_state_dict

__all__ = [
    "ARCHS",
    "CheckpointError",
    "UnsafeCheckpointError",
    "config_from_state_dict",
    "detect_arch",
    "load_torch_checkpoint",
    "model_from_state_dict",
    "read_state_dict",
    "reference_config",
    "resolve_arch",
    "ReferenceStages",
    "trace_reference_stages",
]

ARCHS = ("auto", "pixelrnn", "pixelrnn-noise")

# Noise levels of the authors' noise-trained Tulips1/Cambridge cells (rnn_1_mul_noise_fixed).
AUTHORS_NOISE = dict(cnn_noise_stddev=0.6, gate_noise_stddev=0.6, readout_noise_stddev=1.0)

# The recurrent kernels: PyTorch module name -> pixelrnn-tf cell kernel.
RNN_KERNELS = {
    "rnn_model.ConvGates_i.weight": "w_f",
    "rnn_model.ConvGates_h.weight": "u_f",
    "rnn_model.Conv_out_i.weight": "w_o",
    "rnn_model.Conv_out_h.weight": "u_o",
}
RNN_THRESHOLD = "rnn_model.rnn_threshold"
BN = "fin_convpost.0"

# Keys the importer reads, with their shapes (None: the class count, read from fc.weight).
_REQUIRED = {
    "cnn_model.conv1.weight": (16, 1, 5, 5),
    "cnn_model.thresh1": (1,),
    **{key: (1, 1, 5, 5) for key in RNN_KERNELS},
    "fin_conv.weight": (1, 1, 1, 1),
    f"{BN}.weight": (1,),
    f"{BN}.bias": (1,),
    f"{BN}.running_mean": (1,),
    f"{BN}.running_var": (1,),
    "thresh3": (1,),
    "fc.weight": (None, 4096),
    "fc.bias": (None,),
}
# Keys that exist in the authors' checkpoints but play no part in the model.
_IGNORED = ("cnn_model.thresh2", f"{BN}.num_batches_tracked")

def detect_arch(state_dict):
    """ "pixelrnn-noise" when the checkpoint has the learned forget-gate threshold, else "pixelrnn"."""
    return "pixelrnn-noise" if RNN_THRESHOLD in state_dict else "pixelrnn"


def resolve_arch(state_dict, arch):
    """The arch a checkpoint is imported as: `arch`, or for "auto" what its keys say; an arch that
    would drop the checkpoint's learned forget-gate threshold is refused."""
    if arch not in ARCHS:
        raise CheckpointError(f"Unknown arch {arch!r}; choose one of {', '.join(ARCHS)}.")
    if arch == "auto":
        return detect_arch(state_dict)
    if arch == "pixelrnn" and RNN_THRESHOLD in state_dict:
        raise CheckpointError(
            f"The checkpoint has {RNN_THRESHOLD} (a noise-trained cell), which arch 'pixelrnn' would drop; "
            "use --arch pixelrnn-noise or auto."
        )
    return arch


def _check_keys(state_dict, arch):
    required = dict(_REQUIRED)
    if arch == "pixelrnn-noise":
        required[RNN_THRESHOLD] = (1,)
    missing = [key for key in required if key not in state_dict]
    if missing:
        raise CheckpointError(
            f"The checkpoint lacks {', '.join(missing)}; a 1-layer PixelRNN checkpoint of the authors' release "
            f"({arch}) has {', '.join(required)}."
        )
    unknown = [key for key in state_dict if key not in required and key not in _IGNORED]
    if unknown:
        raise CheckpointError(
            f"The checkpoint has tensors this importer does not know: {', '.join(unknown)}. It reads the "
            "authors' 1-layer binary CNN + PixelRNN model only; importing it would silently drop them."
        )
    classes = state_dict["fc.weight"].shape[0] if state_dict["fc.weight"].ndim == 2 else None
    for key, expected in required.items():
        shape = tuple(classes if n is None else n for n in expected)
        got = tuple(state_dict[key].shape)
        if got != shape:
            raise CheckpointError(f"{key} has shape {got}; expected {shape}.")
        if not np.all(np.isfinite(state_dict[key])):
            raise CheckpointError(f"{key} holds NaN or infinite values.")
    if classes < 2:
        raise CheckpointError(f"fc.weight has {classes} output(s); a classifier needs at least 2.")


def _binary(state_dict, key):
    values = np.asarray(state_dict[key], np.float32)
    if not np.all(np.abs(values) == 1.0):
        raise CheckpointError(
            f"{key} must hold binary weights (every entry exactly +1 or -1, as the authors' training "
            f"leaves them); it holds values in [{values.min():.4g}, {values.max():.4g}]."
        )
    return values


def reference_config(arch="pixelrnn", num_classes=4, cnn_threshold=0.5, **overrides):
    """The ModelConfig of the authors' 1-layer binary CNN + PixelRNN model (Tulips1: 4 classes)."""
    if arch not in ("pixelrnn", "pixelrnn-noise"):
        raise CheckpointError(f"Unknown arch {arch!r}; choose pixelrnn or pixelrnn-noise.")
    noise = dict(AUTHORS_NOISE, forget_threshold=True) if arch == "pixelrnn-noise" else {}
    return ModelConfig.from_any(
        dict(
            arch="pixelrnn",
            cnn_layers=1,
            binary=True,
            frames=16,
            window=16,
            decoder="reference",
            num_classes=int(num_classes),
            cnn_threshold_init=float(cnn_threshold),
            **noise,
        ),
        **overrides,
    )


def _scalar(state_dict, key):
    return float(np.asarray(state_dict[key]).reshape(-1)[0])


def config_from_state_dict(state_dict, arch="auto"):
    """The ModelConfig of the model a state dict belongs to, after checking its keys and shapes."""
    arch = resolve_arch(state_dict, arch)
    _check_keys(state_dict, arch)
    return reference_config(
        arch,
        num_classes=state_dict["fc.weight"].shape[0],
        cnn_threshold=_scalar(state_dict, "cnn_model.thresh1"),
    )


def model_from_state_dict(state_dict, arch="auto"):
    """A pixelrnn-tf Keras model holding the weights of the authors' PyTorch state dict.

    Layouts: conv kernels (O, I, kh, kw) -> (kh, kw, I, O); fc.weight (C, 4096) -> Dense kernel
    (4096, C) over the row-major flattened 64x64 readout; BatchNorm weight/bias/running_mean/
    running_var -> gamma/beta/moving_mean/moving_variance (eps 1e-5 in both). Binary latent
    weights are set to exactly +-1, so the sign quantizers return them unchanged.
    """
    arch = resolve_arch(state_dict, arch)
    model = build_model(config_from_state_dict(state_dict, arch))
    encoder = model.get_layer(ENCODER_LAYER)
    encoder.kernels[0].assign(_binary(state_dict, "cnn_model.conv1.weight").transpose(2, 3, 1, 0))
    encoder.thresholds[0].assign(_scalar(state_dict, "cnn_model.thresh1"))
    cell = model.get_layer(RECURRENCE_LAYER).cell
    for key, name in RNN_KERNELS.items():
        cell.latent_kernels[name].assign(_binary(state_dict, key).transpose(2, 3, 1, 0))
    if arch == "pixelrnn-noise":
        cell.theta.assign(_scalar(state_dict, RNN_THRESHOLD))
    decoder = model.get_layer(DECODER_LAYER)
    decoder.scale.assign(float(_binary(state_dict, "fin_conv.weight").reshape(())))
    decoder.offset.assign(_scalar(state_dict, "thresh3"))
    bn = decoder.batch_norm
    bn.gamma.assign([_scalar(state_dict, f"{BN}.weight")])
    bn.beta.assign([_scalar(state_dict, f"{BN}.bias")])
    bn.moving_mean.assign([_scalar(state_dict, f"{BN}.running_mean")])
    bn.moving_variance.assign([_scalar(state_dict, f"{BN}.running_var")])
    decoder.dense.kernel.assign(np.asarray(state_dict["fc.weight"], np.float32).T)
    decoder.dense.bias.assign(np.asarray(state_dict["fc.bias"], np.float32))
    return model


def load_torch_checkpoint(path, arch="auto"):
    """Read the authors' PyTorch checkpoint at `path` (no torch needed) and return the Keras model."""
    return model_from_state_dict(read_state_dict(path), arch)


# ---------------------------------------------------------------------------------------------
# Tracing: every stage of the authors' simulator dump, computed by the Keras model's own layers.


@dataclasses.dataclass
class ReferenceStages:
    """Per clip and frame (arrays indexed [clip, frame, ...]) every intermediate of the model:
    conv (16 channels, 64x64 each, channel-last), pooled (16x16x16), thresholded (64x64, tiled),
    hidden (h before the update), fi, fh, oi, oh (w_f*x, u_f*h, w_o*x, u_o*h), forget_gate,
    next_hidden (h after the update), output (o at every frame); readout (o at the last frame of
    each clip, [clip, 64, 64]) and logits [clip, classes]."""

    conv: np.ndarray
    pooled: np.ndarray
    thresholded: np.ndarray
    hidden: np.ndarray
    fi: np.ndarray
    fh: np.ndarray
    oi: np.ndarray
    oh: np.ndarray
    forget_gate: np.ndarray
    next_hidden: np.ndarray
    output: np.ndarray
    readout: np.ndarray
    logits: np.ndarray


def trace_reference_stages(model, clips):
    """Run `model` (a 1-layer binary PixelRNN with one window per clip) on `clips` (B, T, 64, 64[, 1])
    and return every stage of every frame as `ReferenceStages`, with noise off.

    The stages come from the model's own layers (`InPixelCNN.frame_stages`, the cell's kernels,
    forget gate and output), stepped frame by frame from h = +1; the readout and logits come from
    the whole Keras model, so a disagreement between the step-by-step trace and the model shows.
    """
    clips = np.asarray(clips, np.float32)
    if clips.ndim == 4:
        clips = clips[..., None]
    batch, frames = clips.shape[:2]
    encoder = model.get_layer(ENCODER_LAYER)
    recurrence = model.get_layer(RECURRENCE_LAYER)
    cell = recurrence.cell
    if encoder.num_layers != 1 or frames != recurrence.window:
        raise ValueError("trace_reference_stages needs a 1-layer CNN and clips of exactly one window (T = K).")
    stages = encoder.frame_stages(tf.constant(clips.reshape((-1,) + clips.shape[2:])), training=False)[0]
    per_frame = lambda t: np.asarray(t).reshape((batch, frames) + tuple(t.shape[1:]))  # noqa: E731
    conv, pooled, tiled = per_frame(stages["conv"]), per_frame(stages["pooled"]), per_frame(stages["tiled"])
    h = tf.ones((batch,) + tiled.shape[2:], tf.float32)
    trace = {name: [] for name in ("hidden", "fi", "fh", "oi", "oh", "forget_gate", "next_hidden", "output")}
    for t in range(frames):
        x = tf.constant(tiled[:, t])
        f = cell.forget_gate(x, h, False)
        next_h = f * h
        for name, value in (
            ("hidden", h),
            ("fi", cell.conv(x, "w_f")),
            ("fh", cell.conv(h, "u_f")),
            ("oi", cell.conv(x, "w_o")),
            ("oh", cell.conv(h, "u_o")),
            ("forget_gate", f),
            ("next_hidden", next_h),
            ("output", cell.output(x, h)),
        ):
            trace[name].append(np.asarray(value)[..., 0])
        h = next_h
    trace = {name: np.stack(values, axis=1) for name, values in trace.items()}
    sensor = tf.keras.Model(model.inputs, model.get_layer("readout").output)
    readout = np.asarray(sensor(clips, training=False))[:, 0, :, :, 0]
    logits = np.asarray(model(clips, training=False))
    return ReferenceStages(
        conv=conv,
        pooled=pooled,
        thresholded=tiled[..., 0],
        readout=readout,
        logits=logits,
        **trace,
    )
