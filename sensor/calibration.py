"""Fitting the emulator's analog model to readouts of a real chip, for inputs whose exact frames
are known.

What the real SCAMP-5 readouts of the PixelRNN authors' Cambridge model show, against the exact
(noise-free) emulation of the same program on the same binarised frames (45 clips):

- a spatial displacement: the chip's readout pixel (y, x) shows what the program computes at
  (y - 3, x + 4) (every clip's best shift lies within one pixel of it);
- a readout gain of about 0.4 and an offset: the chip's values spread far less with the signal than
  the program's, while their own spread (std 5.6 model units) is mostly not the signal;
- a per-pixel fixed pattern: the mean over clips of what the signal leaves unexplained has a
  standard deviation of about 2.8 model units, with whole columns off (the first by -10);
- comparator noise: averaging emulations with noisy comparisons (the CNN threshold, the forget
  gate) predicts the chip better than the exact emulation does, as the authors' noise training
  assumes;
- after all of these a residual of about 4.5 model units with little spatial structure, which the
  model takes as Gaussian readout noise.

`fit_noise` fits these terms, in that order, on the calibration clips only, and `evaluate` reports
on held-out clips: the 1-Wasserstein distance between the emulated and the real readout values,
the mean per-clip correlation, the mean and standard deviation of the values, and, given the
model's decoder, its accuracy on real and on emulated readouts.
"""

import dataclasses

import numpy as np

from sensor.executor import Emulator
from sensor.noise import NO_NOISE, NoiseModel

# 8-bit readout codes: value = (code - 127) / 10; binary frames: code 0 is -1, 255 is +1
CODE_ZERO, CODE_UNIT = 127.0, 10.0
ARRAYS = ("binarized_x", "scamp5_readout")
SHIFT_SEARCH = 8  # pixels searched in each direction for the readout displacement
MIN_CORRELATION = 0.1  # below this the readouts did not come from the model's program


class CalibrationError(ValueError):
    """Clips or a model that cannot be calibrated against (wrong shapes, codes, or readouts
    that are not the given model's)."""


@dataclasses.dataclass
class CalibrationClips:
    """frames (N, T, H, W) of +-1 (what the CNN sees), readouts (N, h, w) in model units."""

    frames: np.ndarray
    readouts: np.ndarray
    names: tuple = ()
    labels: np.ndarray = None

    def subset(self, index):
        index = np.asarray(index)
        names = tuple(np.asarray(self.names)[index]) if len(self.names) else ()
        labels = None if self.labels is None else np.asarray(self.labels)[index]
        return CalibrationClips(self.frames[index], self.readouts[index], names, labels)

    def __len__(self):
        return len(self.frames)


def load_clips(path):
    """CalibrationClips from an .npz with `binarized_x` (N, T, H, W) uint8 codes 0/255 and
    `scamp5_readout` (N, h, w) uint8 codes; `clip_names` and `labels` are optional."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CalibrationError(f"{path}: no such clip file.") from None
    except (OSError, ValueError) as error:
        raise CalibrationError(f"{path} is not an .npz archive of arrays: {error}") from None
    missing = [name for name in ARRAYS if name not in data.files]
    if missing:
        raise CalibrationError(f"{path} lacks {', '.join(missing)}; it needs {', '.join(ARRAYS)} (and may have clip_names, labels).")
    frames, readouts = data["binarized_x"], data["scamp5_readout"]
    if frames.ndim != 4:
        raise CalibrationError(f"{path}: binarized_x must be (clips, frames, height, width), got shape {frames.shape}.")
    if readouts.ndim != 3 or readouts.shape[0] != frames.shape[0]:
        raise CalibrationError(
            f"{path}: scamp5_readout must be (clips, height, width) with one readout per clip of binarized_x "
            f"({frames.shape[0]} clips), got shape {readouts.shape}."
        )
    for name, array in (("binarized_x", frames), ("scamp5_readout", readouts)):
        if array.dtype != np.uint8:
            raise CalibrationError(f"{path}: {name} must hold 8-bit codes (uint8), got {array.dtype}.")
    codes = np.unique(frames)
    if not set(codes.tolist()) <= {0, 255}:
        raise CalibrationError(f"{path}: binarized_x must hold only the codes 0 and 255 (-1 and +1), got {codes[:6].tolist()}...")
    labels = data["labels"] if "labels" in data.files else None
    names = tuple(str(n) for n in data["clip_names"]) if "clip_names" in data.files else ()
    return CalibrationClips(
        frames.astype(np.float32) / 127.5 - 1.0,
        (readouts.astype(np.float32) - CODE_ZERO) / CODE_UNIT,
        names,
        labels,
    )


# ------------------------------------------------------------------------------------ metrics
def wasserstein1(a, b):
    """1-Wasserstein distance between the value distributions of a and b (equal sizes: the mean
    absolute difference of the sorted values; otherwise on the quantiles of the smaller)."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    if a.size != b.size:
        q = (np.arange(min(a.size, b.size)) + 0.5) / min(a.size, b.size)
        a, b = np.quantile(a, q), np.quantile(b, q)
    return float(np.mean(np.abs(a - b)))


def clip_correlations(a, b):
    """Pearson correlation of each clip's readout in a with the same clip's in b, (N,)."""
    a = np.reshape(a, (len(a), -1)).astype(np.float64)
    b = np.reshape(b, (len(b), -1)).astype(np.float64)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1) + 1e-12)


def shift_planes(planes, rows, cols):
    """planes (N, h, w) read at (y + rows, x + cols), zero beyond the edge."""
    n, h, w = planes.shape
    out = np.zeros_like(planes)
    ys, yd = slice(max(0, rows), h + min(0, rows)), slice(max(0, -rows), h + min(0, -rows))
    xs, xd = slice(max(0, cols), w + min(0, cols)), slice(max(0, -cols), w + min(0, -cols))
    out[:, yd, xd] = planes[:, ys, xs]
    return out


def best_shift(simulated, real, search=SHIFT_SEARCH):
    """((rows, cols), mean per-clip correlation) of the displacement that best aligns simulated
    readouts with real ones (over the overlap, so that the edge fill does not count)."""
    h, w = real.shape[1:]
    best = ((0, 0), -np.inf)
    for rows in range(-search, search + 1):
        for cols in range(-search, search + 1):
            ys, yd = slice(max(0, rows), h + min(0, rows)), slice(max(0, -rows), h + min(0, -rows))
            xs, xd = slice(max(0, cols), w + min(0, cols)), slice(max(0, -cols), w + min(0, -cols))
            r = float(np.mean(clip_correlations(simulated[:, ys, xs], real[:, yd, xd])))
            if r > best[1]:
                best = ((rows, cols), r)
    return best


# ------------------------------------------------------------------------------------ fitting
def fit_readout_stage(signal, real):
    """(gain, offset, fixed pattern (h, w)) with real ~ gain * signal + offset + pattern, least
    squares over clips (N, h, w); the pattern has mean 0. A per-pixel pattern is a fixed effect,
    so the gain comes from each pixel's deviations from its own mean over the clips."""
    signal, real = np.asarray(signal, np.float64), np.asarray(real, np.float64)
    if signal.shape[0] < 2:
        raise CalibrationError("Fitting a per-pixel pattern needs at least 2 clips.")
    ds, dr = signal - signal.mean(0), real - real.mean(0)
    gain = float((ds * dr).sum() / max((ds * ds).sum(), 1e-12))
    level = real.mean(0) - gain * signal.mean(0)
    offset = float(level.mean())
    return gain, offset, level - offset


def emulate(program, config, clips, noise, seed=0, progress=None):
    """Readouts (N, h, w), model units, of the program's first window for every clip."""
    result = Emulator(program, config, noise=noise, seed=seed).run(clips.frames[:, : program.window], progress=progress)
    return result.readouts[:, 0, :, :, 0]


@dataclasses.dataclass
class Calibration:
    """The fitted NoiseModel and what the fit saw: the displacement, the comparator noise tried
    with the calibration clips' correlation of the mean prediction for each, and which clips were
    held out."""

    noise: NoiseModel
    shift_correlation: float
    comparator_scores: dict
    calibration_clips: tuple
    holdout_clips: tuple


def split_clips(count, holdout_every=3):
    """(calibration, held-out) clip indices: every `holdout_every`-th clip is held out."""
    index = np.arange(count)
    held = index % holdout_every == holdout_every - 1
    return index[~held], index[held]


def fit_noise(program, config, clips, comparator_grid=(0.0, 3.0, 6.0, 9.0), draws=3, seed=0, base=NO_NOISE, progress=None):
    """Fit the analog model on `clips` (CalibrationClips: use the calibration ones only).

    1. The displacement: the shift that best aligns the exact emulation with the real readouts.
       If even the best alignment correlates below MIN_CORRELATION, the readouts are not this
       program's, and a CalibrationError says so.
    2. The comparator noise (sensor units): for each value of comparator_grid, `draws` noisy
       emulations are averaged and the readout stage fitted to them; the value whose prediction
       correlates best with the real readouts is kept.
    3. The readout stage: gain, offset and per-pixel fixed pattern, by least squares against the
       shifted mean emulation.
    4. The readout noise: the Gaussian whose variance makes the emulated readouts (one draw)
       spread as much as the real ones.
    base: the NoiseModel the fitted terms are added to (per-operation noise, e.g. the published
    figures); its readout and comparator terms are replaced."""
    real = clips.readouts
    exact = emulate(program, config, clips, dataclasses.replace(base, comparator_stddev=0.0), seed, progress)
    (rows, cols), r = best_shift(exact, real)
    if r < MIN_CORRELATION:
        raise CalibrationError(
            f"The real readouts do not match this model's program: at the best of every displacement up to "
            f"{SHIFT_SEARCH} pixels they correlate only {r:.2f} with its emulation. Calibrate with the model "
            "the readouts came from (and its input_white)."
        )
    scores, fits = {}, {}
    for stddev in comparator_grid:
        model = dataclasses.replace(base, comparator_stddev=float(stddev))
        runs = [exact] if stddev == 0 and not base.random else [
            emulate(program, config, clips, model, seed + 1000 * d + 1, progress) for d in range(draws)
        ]
        mean = shift_planes(np.mean(runs, 0), rows, cols)
        gain, offset, pattern = fit_readout_stage(mean, real)
        prediction = gain * mean + offset + pattern
        scores[float(stddev)] = float(np.mean(clip_correlations(prediction, real)))
        fits[float(stddev)] = (gain, offset, pattern, shift_planes(runs[0], rows, cols))
    comparator = max(scores, key=scores.get)
    gain, offset, pattern, one_draw = fits[comparator]
    emulated = gain * one_draw + offset + pattern
    readout_stddev = float(np.sqrt(max(real.var() - emulated.var(), 0.0)))
    noise = dataclasses.replace(
        base,
        comparator_stddev=comparator,
        readout_gain=gain,
        readout_offset=offset,
        readout_shift=(rows, cols),
        readout_stddev=readout_stddev,
        readout_fixed_pattern=tuple(tuple(float(v) for v in row) for row in np.round(pattern, 3)),
    )
    return Calibration(noise, r, scores, clips.names, ())


def evaluate(program, config, clips, noise, decoder=None, repeats=3, seed=0, progress=None):
    """Held-out figures of emulated readouts with `noise` against the real ones: mean over
    `repeats` seeds of the 1-Wasserstein distance, the mean per-clip correlation, and the
    emulated mean and std; with a decoder (readouts (N, 1, h, w, 1) -> logits) and labels, its
    accuracy on the emulated readouts."""
    rows = []
    for repeat in range(repeats if noise.random else 1):
        emulated = emulate(program, config, clips, noise, seed + repeat, progress)
        row = {
            "wasserstein": wasserstein1(emulated, clips.readouts),
            "correlation": float(np.mean(clip_correlations(emulated, clips.readouts))),
            "mean": float(emulated.mean()),
            "std": float(emulated.std()),
        }
        if decoder is not None and clips.labels is not None:
            row["accuracy"] = accuracy(decoder, emulated, clips.labels)
        rows.append(row)
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def expected_figures(program, config, clips, noise, draws=3, seed=0, progress=None):
    """Distance and mean per-clip correlation of the model's expected readout (the mean of
    `draws` emulations without the readout noise) against the real ones: how much of the real
    readout the model predicts at all. A single noisy draw d cannot correlate better with the real
    readout r than about corr(E, r) * corr(d, E), since its noise is independent of the chip's."""
    quiet = dataclasses.replace(noise, readout_stddev=0.0)
    mean = np.mean([emulate(program, config, clips, quiet, seed + d, progress) for d in range(draws if quiet.random else 1)], 0)
    return {
        "wasserstein": wasserstein1(mean, clips.readouts),
        "correlation": float(np.mean(clip_correlations(mean, clips.readouts))),
        "mean": float(mean.mean()),
        "std": float(mean.std()),
    }


def accuracy(decoder, readouts, labels):
    logits = np.asarray(decoder(readouts[:, None, :, :, None].astype(np.float32)))
    return float(np.mean(np.argmax(logits, -1) == np.asarray(labels)))


def real_figures(clips, decoder=None):
    """The same figures for the real readouts themselves (distance 0, correlation 1)."""
    row = {"mean": float(clips.readouts.mean()), "std": float(clips.readouts.std())}
    if decoder is not None and clips.labels is not None:
        row["accuracy"] = accuracy(decoder, clips.readouts, clips.labels)
    return row
