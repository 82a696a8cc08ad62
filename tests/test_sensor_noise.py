"""The analog noise model: statistics of single macros, seeding, and the SCAMP-5 calibration."""

import numpy as np
import pytest

from sensor import NoiseModel, Scamp5, resolve_noise, scamp5_noise
from sensor import instructions as I
from tests.sensor_helpers import run

FULL = Scamp5()
PLANE = np.full((256, 256), 40.0, np.float32)


def test_temporal_noise_of_a_macro_is_one_draw_with_the_summed_variance():
    noise = NoiseModel(temporal_stddev=0.5)
    planes, _, _ = run([I.mov("C", "A")], config=FULL, noise=noise, A=PLANE)
    error = planes["C"] - PLANE
    assert abs(error.mean()) < 0.01
    assert error.std() == pytest.approx(0.5 * np.sqrt(2), rel=0.02)  # mov = 2 bus operations


def test_signal_dependent_noise_grows_with_the_value():
    noise = NoiseModel(temporal_stddev=0.1, signal_stddev=0.01)
    planes, _, _ = run([I.mov("C", "A")], config=FULL, noise=noise, A=PLANE)
    assert (planes["C"] - PLANE).std() == pytest.approx((0.1 + 0.01 * 40) * np.sqrt(2), rel=0.03)


def test_drift_of_a_macro_equals_its_bus_operations_one_by_one():
    noise = NoiseModel(drift_offset=0.4, drift_gain=0.01)
    planes, _, _ = run([I.abs_("C", "A")], config=FULL, noise=noise, A=PLANE)
    v = 40.0
    for _ in range(6):  # abs = 6 bus operations, each v <- v - (alpha + beta v)
        v = v - (0.4 + 0.01 * v)
    np.testing.assert_allclose(planes["C"], v, rtol=1e-5)


def test_fixed_pattern_offsets_belong_to_the_chip_and_the_seed():
    noise = NoiseModel(fixed_pattern_stddev=0.2)
    first, _, _ = run([I.mov("C", "A")], config=FULL, noise=noise, seed=3, A=PLANE)
    again, _, _ = run([I.mov("C", "A"), I.mov("C", "A")], config=FULL, noise=noise, seed=3, A=PLANE)
    other, _, _ = run([I.mov("C", "A")], config=FULL, noise=noise, seed=4, A=PLANE)
    offsets = first["C"] - PLANE
    assert offsets.std() == pytest.approx(0.4, rel=0.03)  # two bus operations of the same offset
    np.testing.assert_allclose(again["C"] - PLANE, offsets, atol=1e-4)  # the same pixels, every time
    assert np.corrcoef(offsets.ravel(), (other["C"] - PLANE).ravel())[0, 1] < 0.05


def test_temporal_noise_is_reproducible_per_seed_and_differs_per_step():
    noise = NoiseModel(temporal_stddev=1.0)
    a, _, _ = run([I.mov("C", "A"), I.mov("D", "A")], config=FULL, noise=noise, seed=1, A=PLANE)
    b, _, _ = run([I.mov("C", "A"), I.mov("D", "A")], config=FULL, noise=noise, seed=1, A=PLANE)
    c, _, _ = run([I.mov("C", "A"), I.mov("D", "A")], config=FULL, noise=noise, seed=2, A=PLANE)
    np.testing.assert_array_equal(a["C"], b["C"])
    assert not np.allclose(a["C"], c["C"])
    assert abs(np.corrcoef((a["C"] - PLANE).ravel(), (a["D"] - PLANE).ravel())[0, 1]) < 0.02


def test_decay_of_a_held_value():
    noise = NoiseModel(decay_time_s=1e-6)  # 10 instruction words at 10 MHz per e-fold
    planes, _, _ = run([I.in_("A", 100.0)] + [I.dset("R0")] * 10 + [I.mov("C", "A")], config=FULL, noise=noise)
    # A was written, then 10 one-word digital instructions and the mov's 2 words passed
    np.testing.assert_allclose(planes["C"], 100.0 * np.exp(-12 / 10), rtol=1e-5)


def test_noise_specs_resolve():
    assert not resolve_noise("none").enabled and not resolve_noise(None).enabled
    assert resolve_noise("scamp5") == scamp5_noise() == resolve_noise("array", FULL.noise)
    with pytest.raises(ValueError, match="Unknown noise key"):
        resolve_noise({"sigma": 1})


def identity_passes(passes):
    """The measured kernel: an identity of 9 bus operations (4 mov and one bus from NEWS, which
    the last mov leaves holding -A), applied `passes` times."""
    one = [I.mov("B", "A"), I.mov("A", "B"), I.mov("B", "A"), I.mov("A", "B"), I.bus("A", "NEWS")]
    return one * passes


@pytest.mark.parametrize(
    "value, passes, mean_fall, std_range",
    [
        # published SCAMP-5 figures (module docstring of sensor.noise); tolerance: mean within
        # max(2.5 units, 20%), std inside the published band widened by 1 unit
        (0.0, 1, 4.5, (0.5, 4.0)),
        (120.0, 1, 8.8, (0.5, 4.0)),
        (0.0, 32, 55.0, (12.0, 19.0)),
        (120.0, 32, 149.0, (12.0, 19.0)),
    ],
)
def test_scamp5_preset_reproduces_the_published_noise_curves(value, passes, mean_fall, std_range):
    plane = np.full((256, 256), value, np.float32)
    planes, _, _ = run(identity_passes(passes), config=FULL, noise="scamp5", seed=7, A=plane)
    fall = value - planes["A"].mean()
    assert abs(fall - mean_fall) <= max(2.5, 0.2 * mean_fall), fall
    assert std_range[0] <= planes["A"].std() <= std_range[1], planes["A"].std()


def test_a_write_gated_to_one_element_is_emulated_on_that_element_only_with_the_same_statistics():
    """The executor computes a FLAG-gated write only inside the box where FLAG can be set (here
    one 64x64 element, known from the constant pattern): the noise there has the model's mean and
    std, and every pixel outside keeps its value exactly."""
    noise = NoiseModel(temporal_stddev=0.5, drift_offset=0.4)
    program = [I.pattern("R1", 64, 128, 63, 63), I.dmov("FLAG", "R1"), I.mov("C", "A"), I.all_()]
    planes, _, _ = run(program, config=FULL, noise=noise, A=PLANE)
    inside = np.zeros((256, 256), bool)
    inside[64:128, 128:192] = True
    error = planes["C"][inside] - (40.0 - 0.8)  # mov = 2 bus operations of drift 0.4
    assert abs(error.mean()) < 0.03
    assert error.std() == pytest.approx(0.5 * np.sqrt(2), rel=0.03)
    assert not planes["C"][~inside].any()  # C started at 0 and was not written outside
