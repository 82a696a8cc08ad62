"""Programs as data: printing, counting, costing, and the register allocator / checker."""

import numpy as np
import pytest

from sensor import ArrayConfig, Program, RegisterError, Scamp5, allocate_registers
from sensor import instructions as I
from tests.sensor_helpers import run


def _program(frame, reset=(), readout=(), window=1):
    wrap = lambda steps: tuple(("s", i) for i in steps)  # noqa: E731
    return Program({"reset": wrap(reset), "frame": wrap(frame), "readout": wrap(readout)}, window=window)


def test_program_prints_counts_and_costs():
    program = _program([I.in_("a", 1), I.add("a", "a", "a"), I.abs_("b", "a"), I.dshift("r", "q", "east", 3), I.dset("q")],
                       reset=[I.dset("q")], readout=[I.readout("b", (0, 0, 1, 1))], window=4)
    text = str(program)
    assert "add(a, a, a)" in text and "dshift(r, q, east, 3)" in text
    assert program.counts() == {"in": 1, "add": 1, "abs": 1, "dshift": 1, "dset": 1}
    config = Scamp5()
    # frame: in 1 + add 2 + abs 6 + shift 3 + dset 1 = 13 words; reset 1 word shared by 4 frames
    assert program.words_per_frame(config) == pytest.approx(13.25)
    assert program.seconds_per_frame(config) == pytest.approx(13.25 / 10e6)
    assert program.instructions_per_frame() == pytest.approx(5 + 2 / 4)
    # the controller: per frame `in` is a call, add..dset one kernel; reset's kernel and the
    # readout's call come once per 4 frames; the readout sends 1 byte per window
    assert program.kernels_per_frame() == pytest.approx((1.25, 1.25))
    times = program.chip_time(config)
    assert times["kernel launches and calls"] == pytest.approx(2.5 * 1.3e-6)
    assert times["readout link"] == pytest.approx(0.25 / 10e6)
    assert times["total"] == pytest.approx(13.25e-7 + 2.5 * 1.3e-6 + 0.25e-7)


def test_allocator_reuses_registers_of_dead_values():
    # seven analog values, never more than two alive at once, fit SCAMP-5's six registers
    steps = [I.in_("v0", 1.0)] + [I.add(f"v{n + 1}", f"v{n}", f"v{n}") for n in range(6)]
    program = _program(steps, readout=[I.readout("v6", (0, 0, 1, 1))])
    mapping = allocate_registers(program, Scamp5())
    names = {i.dst for _, i in mapping["frame"]}
    assert names <= set("ABCDEF")  # seven values in six registers: at least one was reused
    # and the allocated program still computes 2^6
    planes, _, _ = run([i for _, i in mapping["frame"]], config=ArrayConfig(name="t", height=4, width=4))
    assert planes[mapping["frame"][-1][1].dst][0, 0] == 64


def test_allocator_refuses_too_many_live_values_and_names_the_step():
    steps = [I.in_(f"v{n}", n) for n in range(7)] + [I.add("s", "v0", "v1")] + [I.add("s", "s", f"v{n}") for n in range(2, 7)]
    with pytest.raises(RegisterError, match=r"frame step 6 \(stage s\): in\(v6, 6\) needs a analog register for 'v6'"):
        allocate_registers(_program(steps), Scamp5())
    # an array with more registers takes the same program
    bigger = ArrayConfig(name="8-register", analog_registers=tuple("ABCDEFGH"))
    allocate_registers(_program(steps), bigger)


def test_values_carried_between_sections_keep_their_register():
    program = _program([I.dnot("h", "h"), I.dset("t1"), I.dand("t2", "t1", "h")], reset=[I.dset("h")],
                       readout=[I.readout("h", (0, 0, 1, 1))])
    mapping = allocate_registers(program, Scamp5())
    h = mapping["reset"][0][1].dst
    assert mapping["frame"][0][1].dst == h and mapping["frame"][0][1].srcs == (h,)
    assert mapping["readout"][0][1].srcs == (h,)
    assert h not in {mapping["frame"][1][1].dst, mapping["frame"][2][1].dst}


def test_checker_refuses_wrong_kinds_and_unknown_reads():
    with pytest.raises(RegisterError, match="needs a digital register, but A is analog"):
        allocate_registers(_program([I.dset("A")]), Scamp5())
    with pytest.raises(RegisterError, match="reads 'x' before anything writes it"):
        allocate_registers(_program([I.in_("a", 1), I.add("a", "a", "x")]), Scamp5())
    with pytest.raises(RegisterError, match="as digital, elsewhere as analog"):
        allocate_registers(_program([I.in_("a", 1), I.dset("a")]), Scamp5())


def test_physical_registers_named_by_a_program_are_not_handed_out():
    steps = [I.in_("A", 1), I.in_("x", 2), I.add("B", "A", "x")]
    mapping = allocate_registers(_program(steps), Scamp5())
    assert mapping["frame"][1][1].dst not in ("A", "B")
    planes, _, _ = run([i for _, i in mapping["frame"]])
    np.testing.assert_array_equal(planes["B"], 3.0)
