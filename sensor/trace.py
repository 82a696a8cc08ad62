"""A look inside a compiled program: its listing, its cost per stage, and PNG snapshots of every
register plane after each stage of a clip's first frame (`pixelrnn emulate --trace DIR`)."""

import json
from pathlib import Path

from pixelrnn_tf.files import write_text_atomic
from sensor.executor import Emulator


def stage_costs(program, config):
    """{stage: {"instructions", "words"}} for one execution of every section."""
    stages = {}
    for steps in program.sections.values():
        for stage, instruction in steps:
            entry = stages.setdefault(stage, {"instructions": 0, "words": 0})
            entry["instructions"] += 1
            entry["words"] += instruction.words(config)
    return stages


def write_trace(directory, program, config, clip, noise="none", seed=0):
    """Write program.txt, stages.json and snapshots/*.png (sensor 0, first frame of `clip`, an
    array (T, h, w) or (T, h, w, 1)) into `directory`. Returns {"directory", "snapshots"}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(directory / "program.txt", str(program) + "\n")
    costs = {"per_execution": stage_costs(program, config), "window": program.window}
    write_text_atomic(directory / "stages.json", json.dumps(costs, indent=2))
    # snapshots run one frame eagerly: compiling each write's kernel would cost more than it saves
    emulator = Emulator(program, config, noise=noise, seed=seed, jit=False)
    clip = clip[..., 0] if clip.ndim == 4 else clip
    paths = emulator.snapshots(clip, directory / "snapshots")
    return {"directory": str(directory), "snapshots": len(paths)}
