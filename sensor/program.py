"""A program for a pixel processor array: named sections of instructions, as data.

An emulated or real run executes, for every window of K frames,

    reset          once at the window's start (e.g. the hidden state h := +1)
    frame          once per frame (input, CNN, recurrent step)
    readout        once at the window's end (what leaves the chip)

A readout instruction may also stand in `frame` (cameras read every frame out): the window's
readouts are then every frame's, in order, followed by those of `readout`.

Each instruction carries the name of the stage it belongs to ("cnn1", "rnn", ...), so a program
can be counted and costed per stage. Programs may name registers virtually ("acc", "x"); the
register allocator maps them onto the array's physical registers by liveness and refuses, naming
the step, a program that needs more than the array has.
"""

import collections
import dataclasses
from typing import Mapping, Tuple

from sensor.instructions import OPS, Instruction

SECTIONS = ("reset", "frame", "readout")
CONTROLLER_CALLS = ("in", "pattern", "readout")


class RegisterError(ValueError):
    """A program that does not fit the array's registers (or names registers it does not have)."""


@dataclasses.dataclass(frozen=True)
class Program:
    """sections: {"reset"|"frame"|"readout": ((stage, Instruction), ...)}; window: K frames per
    readout; readout_unit: sensor units per model unit of the readout; info: compiler notes."""

    sections: Mapping[str, Tuple[Tuple[str, Instruction], ...]]
    window: int = 1
    readout_unit: float = 1.0
    info: Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"Unknown program section(s) {sorted(unknown)}; use {', '.join(SECTIONS)}.")

    def instructions(self, section):
        return tuple(instruction for _, instruction in self.sections.get(section, ()))

    def __len__(self):
        return sum(len(v) for v in self.sections.values())

    def __str__(self):
        lines = []
        for section in SECTIONS:
            steps = self.sections.get(section, ())
            lines.append(f"{section}:  ({len(steps)} instructions)")
            lines += [f"  {i:5d}  {stage:<10} {instruction}" for i, (stage, instruction) in enumerate(steps)]
        return "\n".join(lines)

    def counts(self, section="frame"):
        """Instructions per operation in one execution of `section`."""
        return dict(collections.Counter(instruction.op for instruction in self.instructions(section)))

    def words_by_stage(self, config):
        """Instruction words per stage, averaged per frame (reset and readout shared by K frames)."""
        words = collections.Counter()
        for section, steps in self.sections.items():
            share = 1.0 if section == "frame" else 1.0 / self.window
            for stage, instruction in steps:
                words[stage] += share * instruction.words(config)
        return dict(words)

    def instructions_per_frame(self):
        """Instructions executed per frame, averaged over the window."""
        frame = len(self.sections.get("frame", ()))
        return frame + (len(self.sections.get("reset", ())) + len(self.sections.get("readout", ()))) / self.window

    def words_per_frame(self, config):
        return sum(self.words_by_stage(config).values())

    def seconds_per_frame(self, config):
        """Estimated on-chip time per frame: instruction words / clock."""
        return config.seconds(self.words_per_frame(config))

    def kernels_per_frame(self):
        """(kernel launches, controller calls) per frame, averaged over the window. The controller
        issues a run of array instructions as one kernel; loading a constant through the DAC
        (`in`), an address pattern (`pattern`) and a readout are library calls that end the run."""
        kernels = calls = 0.0
        for section, steps in self.sections.items():
            share = 1.0 if section == "frame" else 1.0 / self.window
            in_kernel = False
            for _, instruction in steps:
                if instruction.op in CONTROLLER_CALLS:
                    calls += share
                    in_kernel = False
                elif not in_kernel:
                    kernels += share
                    in_kernel = True
        return kernels, calls

    def readout_bytes_per_frame(self):
        """Bytes sent to the host per frame (one byte per read-out value), averaged over the window."""
        total = 0.0
        for section in SECTIONS:
            share = 1.0 if section == "frame" else 1.0 / self.window
            for instruction in self.instructions(section):
                if instruction.op == "readout":
                    _, _, height, width = instruction.args[0]
                    pool = instruction.args[3]
                    total += share * (height // pool) * (width // pool)
        return total

    def chip_time(self, config):
        """Estimated seconds per frame on the chip, by term: the instruction words at the clock,
        the controller's kernel launches and library calls, and the readout over the host link
        (sensor.machine's docstring has the sources)."""
        kernels, calls = self.kernels_per_frame()
        terms = {
            "instructions": config.seconds(self.words_per_frame(config)),
            "kernel launches and calls": (kernels + calls) * config.call_s,
            "readout link": self.readout_bytes_per_frame() / config.link_bytes_per_s,
        }
        terms["total"] = sum(terms.values())
        return terms

    def allocate(self, config):
        """This program with virtual registers replaced by physical ones of `config`."""
        return dataclasses.replace(self, sections=allocate_registers(self, config))


def _operand_kinds(instruction):
    spec = OPS[instruction.op]
    if instruction.dst:
        yield instruction.dst, spec.dst, True
    for src in instruction.srcs:
        yield src, spec.srcs, False


def allocate_registers(program, config):
    """The program's sections with every virtual register replaced by a physical one of `config`.

    A name is physical if `config` has a register of that name; any other name is virtual. Each
    write of a virtual name starts a new value that lives until its last read before the next
    write (a FLAG-gated analog write keeps the old value where FLAG is clear, so it continues the
    value instead). A name used in more than one section (h, carried from frame to frame, or a
    register read out at the window's end) is one value live for the whole program. Values are
    packed onto the free registers by linear scan; physical registers that the program names
    explicitly are never handed out. Raises RegisterError naming the step where the array runs
    out of registers, or where an operand has the wrong kind.
    """
    steps = [(section, step, instruction) for section in SECTIONS
             for step, (_, instruction) in enumerate(program.sections.get(section, ()))]
    kinds, sections_of = _virtual_kinds(steps, config)
    intervals, roles = _live_values(steps, kinds, sections_of)
    stages = [stage for section in SECTIONS for stage, _ in program.sections.get(section, ())]
    assigned = _linear_scan(steps, intervals, kinds, config, stages)
    sections, position = {}, 0
    for section in SECTIONS:
        if section not in program.sections:
            continue
        renamed = []
        for stage, instruction in program.sections[section]:
            sources, destination = roles[position]
            renamed.append((stage, instruction.rename(
                {n: assigned[v] for n, v in sources.items()}, {n: assigned[v] for n, v in destination.items()}
            )))
            position += 1
        sections[section] = tuple(renamed)
    return sections


def _virtual_kinds(steps, config):
    """({virtual name: 'analog' | 'digital'}, {virtual name: sections that use it}), checking every
    operand's kind against its instruction (physical names included) on the way."""
    kinds, sections_of = {}, collections.defaultdict(set)
    for section, step, instruction in steps:
        for name, kind, _ in _operand_kinds(instruction):
            physical = config.kind(name)
            if kind == "flag":
                if name != config.flag:
                    raise RegisterError(f"{section} step {step}: {instruction} must write {config.flag}.")
                continue
            if physical is not None:
                if kind in ("analog", "digital") and physical != kind:
                    raise RegisterError(f"{section} step {step}: {instruction} needs a {kind} register, but {name} is {physical}.")
                continue
            if kind in ("analog", "digital"):
                if kinds.get(name, kind) != kind:
                    raise RegisterError(f"{section} step {step}: {instruction} uses {name!r} as {kind}, elsewhere as {kinds[name]}.")
                kinds[name] = kind
            sections_of[name].add(section)
    for name in sections_of:
        if name not in kinds:
            raise RegisterError(f"Register {name!r} is only ever read out; nothing writes it.")
    return kinds, sections_of


def _live_values(steps, kinds, sections_of):
    """The values of virtual names and where they live: ({value: [first, last position]}, and per
    step ({source name: value}, {destination name: value})). A value is (name, position of the
    write that starts it), or (name, "global") for a name shared by sections."""
    last_position = max(len(steps) - 1, 0)
    current, intervals, roles = {}, {}, []
    for position, (section, step, instruction) in enumerate(steps):
        sources = {}
        for name in instruction.srcs:
            if name not in kinds:
                continue
            if name not in current:
                raise RegisterError(f"{section} step {step}: {instruction} reads {name!r} before anything writes it.")
            sources[name] = current[name]
            intervals[current[name]][1] = position
        destination = {}
        name = instruction.dst
        if name in kinds:
            if len(sections_of[name]) > 1:
                value = (name, "global")
                intervals.setdefault(value, [0, last_position])
            elif instruction.spec.gated and name in current:  # the write continues the value
                value = current[name]
                intervals[value][1] = position
            else:
                value = (name, position)
                intervals[value] = [position, position]
            current[name] = value
            destination[name] = value
        roles.append((sources, destination))
    return intervals, roles


def _linear_scan(steps, intervals, kinds, config, stages=None):
    """{value: physical register}: values in order of their start take the first free register of
    their kind; a value's register is free again once it ends before the next one starts."""
    reserved = {r for _, _, i in steps for r in i.registers() if config.kind(r)}
    free = {
        "analog": [r for r in config.analog_registers if r not in reserved],
        "digital": [r for r in config.digital_registers if r not in reserved],
    }
    capacity = {kind: len(pool) for kind, pool in free.items()}
    assigned, active = {}, []
    for value in sorted(intervals, key=lambda v: (intervals[v][0], str(v))):
        start = intervals[value][0]
        for other in [a for a in active if intervals[a][1] <= start and intervals[a][0] < start]:
            active.remove(other)
            free[kinds[other[0]]].append(assigned[other])
        kind = kinds[value[0]]
        if not free[kind]:
            section, step, instruction = steps[start]
            live = sorted({v[0] for v in active if kinds[v[0]] == kind})
            stage = f" (stage {stages[start]})" if stages and stages[start] else ""
            raise RegisterError(
                f"{section} step {step}{stage}: {instruction} needs a {kind} register for {value[0]!r}, but all "
                f"{capacity[kind]} free {kind} registers of {config.name} hold live values ({', '.join(live)})."
            )
        assigned[value] = free[kind].pop(0)
        active.append(value)
    return assigned
