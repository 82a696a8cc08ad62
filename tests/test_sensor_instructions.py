"""Every instruction of sensor.instructions against a hand-computed plane on a 4x4 array."""

import numpy as np
import pytest

from sensor import ArrayConfig, Scamp5
from sensor import instructions as I
from tests.sensor_helpers import SMALL, run

A0 = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [-1, -2, -3, -4], [0, 10, -10, 20]], np.float32)
B0 = np.full((4, 4), 3.0, np.float32)
CHECKER = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]], bool)
LEFT = np.array([[1, 1, 0, 0]] * 4, bool)


def test_bus_negates_the_sum_of_its_sources():
    planes, _, _ = run([I.bus("C", "A", "B")], A=A0, B=B0)
    np.testing.assert_array_equal(planes["C"], -(A0 + 3))


@pytest.mark.parametrize(
    "instruction, expected, news",
    [
        (I.mov("C", "A"), A0, -A0),
        (I.add("C", "A", "B"), A0 + 3, -(A0 + 3)),
        (I.sub("C", "A", "B"), A0 - 3, -A0),
    ],
)
def test_bus_macros_and_their_news_scratch(instruction, expected, news):
    planes, _, _ = run([instruction], A=A0, B=B0, NEWS=np.zeros((4, 4)))
    np.testing.assert_array_equal(planes["C"], expected)
    np.testing.assert_array_equal(planes["NEWS"], news)


@pytest.mark.parametrize(
    "instruction, expected",
    [
        (I.neg("C", "A"), -A0),
        (I.abs_("C", "A"), np.abs(A0)),
        (I.div2("C", "A"), A0 / 2),
        (I.in_("C", 7), np.full((4, 4), 7.0)),
    ],
)
def test_unary_macros(instruction, expected):
    planes, _, _ = run([instruction], A=A0)
    np.testing.assert_array_equal(planes["C"], expected)


@pytest.mark.parametrize(
    "direction, expected",
    [
        # north: each PE reads the PE above it; the top row reads beyond the edge (edge_value 0)
        ("north", [[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8], [-1, -2, -3, -4]]),
        ("south", [[5, 6, 7, 8], [-1, -2, -3, -4], [0, 10, -10, 20], [0, 0, 0, 0]]),
        ("west", [[0, 1, 2, 3], [0, 5, 6, 7], [0, -1, -2, -3], [0, 0, 10, -10]]),
        ("east", [[2, 3, 4, 0], [6, 7, 8, 0], [-2, -3, -4, 0], [10, -10, 20, 0]]),
    ],
)
def test_movx_reads_the_neighbour_and_the_edge_value(direction, expected):
    planes, _, _ = run([I.movx("C", "A", direction)], A=A0)
    np.testing.assert_array_equal(planes["C"], np.array(expected, np.float32))


def test_edge_value_is_part_of_the_array_description():
    config = ArrayConfig(name="edge-5", height=4, width=4, edge_value=5.0)
    planes, _, _ = run([I.movx("C", "A", "north")], config=config, A=A0)
    np.testing.assert_array_equal(planes["C"][0], [5, 5, 5, 5])


def test_input_replicates_a_smaller_frame_over_the_array():
    frame = np.array([[1, -2], [3, 4]], np.float32)
    planes, _, _ = run([I.input_("A", 2.0)], frame=frame)
    np.testing.assert_array_equal(planes["A"], np.tile(2 * frame, (2, 2)))


def test_where_gates_analog_writes_and_all_releases_them():
    # FLAG := A >= 0 (the zero at [3, 0] counts as non-negative, sign(0) = +1)
    planes, _, _ = run([I.where("A"), I.in_("C", 1.0), I.all_(), I.add("D", "C", "C")], A=A0, C=np.full((4, 4), -9.0))
    expected_c = np.where(A0 >= 0, 1.0, -9.0)
    np.testing.assert_array_equal(planes["C"], expected_c)
    np.testing.assert_array_equal(planes["D"], 2 * expected_c)
    assert planes["FLAG"].all()


def test_flag_from_a_bit_plane_gates_and_keeps_old_values():
    planes, _, _ = run([I.dmov("FLAG", "R0"), I.mov("C", "A")], R0=CHECKER, A=A0, C=np.zeros((4, 4)))
    np.testing.assert_array_equal(planes["C"], np.where(CHECKER, A0, 0))


@pytest.mark.parametrize(
    "instruction, expected",
    [
        (I.dmov("R2", "R0"), CHECKER),
        (I.dnot("R2", "R0"), ~CHECKER),
        (I.dor("R2", "R0", "R1"), CHECKER | LEFT),
        (I.dnor("R2", "R0", "R1"), ~(CHECKER | LEFT)),
        (I.dand("R2", "R0", "R1"), CHECKER & LEFT),
        (I.dset("R2"), np.ones((4, 4), bool)),
        (I.dclr("R2"), np.zeros((4, 4), bool)),
    ],
)
def test_digital_logic(instruction, expected):
    planes, _, _ = run([instruction], R0=CHECKER, R1=LEFT, R2=np.eye(4, dtype=bool))
    np.testing.assert_array_equal(planes["R2"], expected)


def test_digital_shift_by_steps_fills_zeros_at_the_edge():
    planes, _, _ = run([I.dshift("R1", "R0", "west", 2), I.dshift("R2", "R0", "south", 1)], R0=CHECKER)
    # west: read the PE two columns to the left
    np.testing.assert_array_equal(planes["R1"], [[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(planes["R2"], [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 0, 0]])


def test_load_pattern_masks_are_dont_care_bits():
    # rows 2 and 3 (row 2 with bit 0 free), column 1 or 3 (column 1 with bit 1 free)
    planes, _, _ = run([I.pattern("R0", 2, 1, 1, 2)])
    expected = np.zeros((4, 4), bool)
    expected[2:, [1, 3]] = True
    np.testing.assert_array_equal(planes["R0"], expected)


def test_readout_region_scale_offset_and_pool():
    _, readouts, _ = run([I.readout("A", (0, 0, 2, 4), 0.5, 1.0), I.readout("R0", (0, 0, 4, 4), 2.0, -1.0, 2)], A=A0, R0=CHECKER)
    np.testing.assert_array_equal(readouts[0], A0[:2] * 0.5 + 1)
    np.testing.assert_array_equal(readouts[1], [[1, 1], [1, 1]])


def test_saturation_clips_at_the_range_and_is_counted():
    planes, _, saturated = run([I.add("C", "A", "A")], A=np.array([[100, -100, 60, 0]] * 4, np.float32))
    np.testing.assert_array_equal(planes["C"], [[127, -128, 120, 0]] * 4)
    assert saturated == 8


def test_costs_follow_the_array_description():
    config = Scamp5()
    words = {str(i): i.words(config) for i in [I.mov("A", "B"), I.abs_("A", "B"), I.div2("A", "B"), I.movx("A", "B", "east"),
                                                I.dshift("R0", "R1", "north", 64), I.dand("R0", "R1", "R2"), I.readout("A", (0, 0, 1, 1))]}
    # AND expands to 4 words in the SCAMP-5d library (scamp5_kernel_api), the other digital ops 1
    assert list(words.values()) == [2, 6, 5, 2, 64, 4, 0]
    cheap = ArrayConfig(name="cheap", bus_ops={**config.bus_ops, "abs": 3})
    assert I.abs_("A", "B").words(cheap) == 3


def test_bad_instructions_are_refused():
    with pytest.raises(ValueError, match="direction"):
        I.movx("A", "B", "up")
    with pytest.raises(ValueError, match="Unknown instruction"):
        I.Instruction("fma", "A")
    with pytest.raises(ValueError, match="steps"):
        I.dshift("R0", "R0", "north", 0)
