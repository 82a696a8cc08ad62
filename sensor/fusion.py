"""Write fusion, planned once per section: which consecutive analog writes run as one kernel.

Writes to one register under FLAGs that are provably disjoint (a tap's add where input and weight
agree, its subtract where they differ, the calibrated program's "+0" elsewhere) can run as one
kernel (sensor.kernels): every pixel takes part in at most one of them. The compiler emits them as

    write(dst, ...)  [digital instructions that leave FLAG alone]  dmov(FLAG, r)  write(dst, ...) ...

and a group grows while the next FLAG is disjoint from all of the group's. The digital
instructions between the writes run before the group's kernel: they read no analog plane, and the
writes read no digital plane but FLAG, which each write takes as it was at its own instruction.

Disjointness is decided on constants and literals (sensor.digital), which do not depend on data:
the planner runs the section's digital instructions on a ShadowPlanes, ahead of the execution.
"""

import dataclasses
from typing import Tuple

from sensor.digital import DIGITAL_OPS, ShadowPlanes, Unknown, disjoint
from sensor.kernels import FUSABLE


@dataclasses.dataclass(frozen=True)
class WriteGroup:
    """Steps start..end - 1 of a section, run as one: the analog writes at the steps `writes`
    (start first) become one kernel, and the digital instructions among them run before it."""

    start: int
    end: int
    writes: Tuple[int, ...]


def plan_writes(steps, state, shape, flag):
    """{first step: WriteGroup} for the groups of more than one step in a section's `steps`
    ((stage, Instruction), ...), executed from `state` (only which digital registers hold
    constants, and their values, matter). A write that starts no group runs alone."""
    shadow = ShadowPlanes(state, shape, flag)
    plan, index = {}, 0
    while index < len(steps):
        instruction = steps[index][1]
        index += 1
        if instruction.op in FUSABLE:
            group = _grow(steps, index - 1, shadow)
            if group.end > index:
                plan[group.start] = group
            index = group.end
        elif instruction.op == "where":
            shadow.compare(Unknown())
        elif instruction.op in DIGITAL_OPS:
            shadow.run(instruction)
    return plan


def _grow(steps, start, shadow):
    """The group that starts with the write at `start`, running the digital instructions it takes
    in on `shadow`."""
    stage, dst, flag = steps[start][0], steps[start][1].dst, shadow.flag
    gates, writes, index = [shadow.gate(flag)], [start], start + 1
    while True:
        k = index
        while k < len(steps) and steps[k][0] == stage and steps[k][1].op in DIGITAL_OPS and steps[k][1].dst != flag:
            k += 1
        if not _gated_write(steps, k, stage, dst, flag):
            return WriteGroup(start, index, tuple(writes))
        for _, instruction in steps[index:k]:
            shadow.run(instruction)
        index = k
        candidate = shadow.gate(steps[k][1].srcs[0])
        if not all(disjoint(candidate, g) for g in gates):
            return WriteGroup(start, index, tuple(writes))
        gates.append(candidate)
        writes.append(k + 1)
        shadow.run(steps[k][1])  # the dmov(FLAG, r) between the writes
        index = k + 2


def _gated_write(steps, k, stage, dst, flag):
    """Whether steps k and k + 1 are dmov(FLAG, r) and a fusable write to dst, in `stage`."""
    return (
        k + 1 < len(steps)
        and all(s == stage for s, _ in steps[k : k + 2])
        and steps[k][1].op == "dmov"
        and steps[k][1].dst == flag
        and steps[k + 1][1].op in FUSABLE
        and steps[k + 1][1].dst == dst
    )
