"""Gaussian draws, the comparator and readout terms of the analog model, and the calibration of
the emulator against the real SCAMP-5 readouts of the authors' Cambridge model (held-out clips)."""

import json
import math
import os
import statistics
from pathlib import Path

import numpy as np
import pytest

from pixelrnn_tf.config import ConfigError
from sensor import NoiseModel, Scamp5, calibration, resolve_noise
from sensor import instructions as I
from sensor.kernels import hash_normal, write_key
from tests.sensor_helpers import SMALL, run

NORMAL = statistics.NormalDist()
FULL = Scamp5()


def test_draws_follow_the_standard_normal_distribution_function():
    draws = np.sort(hash_normal((64, 256, 256), write_key(0, 3, 17)).numpy().ravel())
    grid = np.linspace(-4, 4, 161)
    empirical = np.searchsorted(draws, grid) / draws.size
    normal = np.array([NORMAL.cdf(t) for t in grid])
    # 4.2M draws: the sampling error of a distribution function is below 2.5e-4 (0.5 / sqrt(n))
    assert np.max(np.abs(empirical - normal)) < 6e-4
    tails = np.mean(np.abs(draws) > 3.5)
    assert tails == pytest.approx(2 * NORMAL.cdf(-3.5), rel=0.1)  # 4.7e-4: beyond Irwin-Hall(4)'s 3.46


def test_a_noisy_comparator_passes_with_the_normal_probability():
    # where(A) sets FLAG where A + N(0, s^2) >= 0: at A = 1, s = 2 it fails with P = Phi(-0.5)
    noise = NoiseModel(comparator_stddev=2.0)
    plane = np.full((256, 256), 1.0, np.float32)
    planes, _, _ = run([I.where("A")], config=FULL, noise=noise, A=plane)
    assert np.mean(~planes["FLAG"]) == pytest.approx(NORMAL.cdf(-0.5), abs=0.005)
    exact, _, _ = run([I.where("A")], config=FULL, noise=None, A=plane)
    assert exact["FLAG"].all()


def test_the_readout_stage_shifts_scales_offsets_and_adds_the_pattern():
    plane = np.arange(16, dtype=np.float32).reshape(4, 4)
    pattern = ((0.5, -0.5), (1.0, 0.0))
    noise = NoiseModel(readout_gain=0.5, readout_offset=2.0, readout_shift=(1, -1), readout_fixed_pattern=pattern)
    _, (readout,), _ = run([I.readout("A", (0, 1, 2, 2), 0.1, 0.0)], config=SMALL, noise=noise, A=plane)
    # readout pixel (y, x) of the window at (0, 1) shows A[y + 1, x + 1 - 1]
    shown = plane[1:3, 0:2] * 0.1
    np.testing.assert_allclose(readout, 0.5 * shown + 2.0 + np.array(pattern), rtol=1e-6)


def test_the_readout_stage_clips_to_the_range_of_the_codes_and_reads_zero_beyond_the_array():
    plane = np.full((4, 4), 100.0, np.float32)
    plane[:, 1] = -100.0
    noise = NoiseModel(readout_gain=3.0, readout_shift=(-1, 0))
    _, (readout,), _ = run([I.readout("A", (0, 0, 2, 2), 0.1, 0.0)], config=SMALL, noise=noise, A=plane)
    np.testing.assert_allclose(readout[0], 0.0)  # row -1 is beyond the array
    # 8-bit codes 0..255 are (code - 127) / 10 model units: 3 * 10 saturates at 12.8, 3 * -10 at -12.7
    np.testing.assert_allclose(readout[1], [12.8, -12.7], rtol=1e-6)
    # the program's readout offset is the host's correction: it does not move the codes' range
    _, (moved,), _ = run([I.readout("A", (0, 0, 2, 2), 0.1, 2.0)], config=SMALL, noise=noise, A=plane)
    np.testing.assert_allclose(moved[1], [12.8, -12.7], rtol=1e-6)


def test_a_readout_pattern_of_the_wrong_size_is_a_named_error():
    noise = NoiseModel(readout_fixed_pattern=((0.0,) * 3,) * 3)
    with pytest.raises(ConfigError, match="fitted for a 3x3 readout.*reads out 2x2 values.*--noise published"):
        run([I.readout("A", (0, 0, 2, 2))], config=SMALL, noise=noise, A=np.zeros((4, 4), np.float32))


def test_noise_files_round_trip_with_lists(tmp_path):
    model = NoiseModel(comparator_stddev=1.5, readout_shift=(-3, 4), readout_fixed_pattern=((1.0, 2.0),))
    path = tmp_path / "noise.json"
    path.write_text(json.dumps(model.to_dict()))  # tuples become lists in JSON
    again = resolve_noise(str(path))
    assert again == model and hash(again) == hash(model)
    assert again.random and again.readout_stage and not again.random_writes


def test_readout_noise_has_its_standard_deviation():
    noise = NoiseModel(readout_stddev=0.7)
    plane = np.zeros((256, 256), np.float32)
    _, (readout,), _ = run([I.readout("A", (0, 0, 256, 256), 0.1, 0.0)], config=FULL, noise=noise, A=plane)
    assert readout.std() == pytest.approx(0.7, rel=0.02) and abs(readout.mean()) < 0.01


# ------------------------------------------------------------------------------ clip files
def _write_clips(path, frames, readouts, **extra):
    np.savez(path, binarized_x=frames, scamp5_readout=readouts, **extra)
    return path


def test_clip_files_decode_codes_into_model_units(tmp_path):
    frames = np.zeros((2, 16, 8, 8), np.uint8)
    frames[0, 0, 0, 0] = 255
    readouts = np.full((2, 8, 8), 127, np.uint8)
    readouts[1, 2, 3] = 255
    clips = calibration.load_clips(_write_clips(tmp_path / "c.npz", frames, readouts))
    assert clips.frames[0, 0, 0, 0] == 1.0 and clips.frames[0, 0, 0, 1] == -1.0
    assert clips.readouts[1, 2, 3] == pytest.approx(12.8) and clips.readouts[0, 0, 0] == 0.0


@pytest.mark.parametrize(
    "frames, readouts, message",
    [
        (np.zeros((2, 8, 8), np.uint8), np.zeros((2, 8, 8), np.uint8), "binarized_x must be"),
        (np.zeros((2, 16, 8, 8), np.uint8), np.zeros((3, 8, 8), np.uint8), "one readout per clip"),
        (np.full((2, 16, 8, 8), 7, np.uint8), np.zeros((2, 8, 8), np.uint8), "only the codes 0 and 255"),
        (np.zeros((2, 16, 8, 8), np.float32), np.zeros((2, 8, 8), np.uint8), "8-bit codes"),
    ],
)
def test_bad_clip_files_are_named_errors(tmp_path, frames, readouts, message):
    with pytest.raises(calibration.CalibrationError, match=message):
        calibration.load_clips(_write_clips(tmp_path / "c.npz", frames, readouts))


def test_the_metrics_against_hand_computed_values():
    a = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    assert calibration.wasserstein1(a, a + 0.5) == pytest.approx(0.5)
    assert calibration.wasserstein1(a, a[:, ::-1]) == 0.0  # only the values count, not where
    assert calibration.clip_correlations(a, 2 * a + 1)[0] == pytest.approx(1.0)
    assert calibration.clip_correlations(a, -a)[0] == pytest.approx(-1.0)
    gain, offset, pattern = calibration.fit_readout_stage(np.stack([a[0], a[0] + 1]), np.stack([a[0], a[0] + 1]) * 0.5 + 3 + [[1, -1], [0, 0]])
    assert gain == pytest.approx(0.5) and offset == pytest.approx(3.0)
    np.testing.assert_allclose(pattern, [[1, -1], [0, 0]], atol=1e-9)


def test_best_shift_finds_a_known_displacement():
    rng = np.random.default_rng(0)
    simulated = rng.standard_normal((6, 32, 32))
    real = calibration.shift_planes(simulated, -3, 4) + 0.3 * rng.standard_normal((6, 32, 32))
    (rows, cols), r = calibration.best_shift(simulated, real)
    assert (rows, cols) == (-3, 4) and r > 0.9


# ------------------------------------------------------------------------------ the real chip
@pytest.fixture(scope="module")
def chip():
    """The reference folder (../shared/reference or $PIXELRNN_REFERENCE_DIR) with the real readouts."""
    folder = Path(os.environ.get("PIXELRNN_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference"))
    path = folder / "cambridge_scamp5_calibration.npz"
    if not path.exists():
        pytest.skip(f"{path} is missing: the real-chip readouts of the reference material")
    return folder


@pytest.mark.slow
def test_calibration_on_held_out_clips_of_the_real_chip(chip, tmp_path):
    """The fit sees 30 clips; the figures are on the 15 it never saw. The issue's goals: distance
    under 1.0 (noise-free: about 2.3) and correlation of at least 0.6."""
    from pixelrnn_cli.calibrate import calibrate_noise

    report = calibrate_noise(
        chip / "cam_noise.pt", chip / "cambridge_scamp5_calibration.npz", tmp_path / "noise.json",
        comparator_grid=(0.0, 6.0), draws=2, repeats=1, plot=False,
    )
    rows = report["held_out"]
    fitted, exact, real = rows["calibrated (this fit)"], rows["noise-free emulation"], rows["real chip"]
    assert set(report["held_out_clips"]).isdisjoint(report["calibration_clips"]) and len(report["held_out_clips"]) == 15
    assert tuple(report["readout_shift"]) == (-3, 4)
    assert fitted["wasserstein"] < 1.0 < exact["wasserstein"]
    assert fitted["mean"] == pytest.approx(real["mean"], abs=0.5) and fitted["std"] == pytest.approx(real["std"], abs=0.6)
    assert fitted["correlation"] > exact["correlation"] + 0.05
    assert resolve_noise(str(tmp_path / "noise.json")).readout_shift == (-3, 4)


def test_readouts_of_another_model_are_refused(chip, tmp_path):
    """The Tulips1 model's program has nothing to do with the Cambridge readouts."""
    from pixelrnn_cli.calibrate import calibrate_noise

    with pytest.raises(calibration.CalibrationError, match="do not match this model"):
        calibrate_noise(chip / "lips_no_noise.pt", chip / "cambridge_scamp5_calibration.npz", tmp_path / "n.json",
                        comparator_grid=(0.0,), draws=1, plot=False)
    assert not (tmp_path / "n.json").exists()


def test_the_preset_is_the_calibrated_fit():
    preset = resolve_noise("scamp5")
    assert preset.readout_shift == (-3, 4) and preset.readout_stage and preset.comparator_stddev >= 0
    assert len(preset.readout_fixed_pattern) == 64 and len(preset.readout_fixed_pattern[0]) == 64
    published = resolve_noise("published")
    assert (preset.drift_offset, preset.temporal_stddev) == (published.drift_offset, published.temporal_stddev)
    assert not math.isinf(preset.decay_time_s)
