"""sensor: an emulator of focal-plane pixel processor arrays (SCAMP-5 and successors).

The machine is data (`ArrayConfig`, `Scamp5()`), programs are data (`Program`, built from the
instructions in `sensor.instructions`), `compile(model)` / `compile_tables(tables)` turn a
trained pixelrnn-tf model into a program, comparing at the levels of `sensor.levels`, and
`Emulator` runs programs on register planes with TensorFlow, with the seeded analog noise model
of `sensor.noise`. This package runs programs; it knows nothing of training or run directories.
"""

from pixelrnn_tf._keras import tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)

from sensor import instructions, levels  # noqa: E402
from sensor.compiler import (  # noqa: E402
    INPUT_SCALE,
    compile,  # noqa: A004
    compile_tables,
    default_recurrent_white,
    recurrent_gain,
)
from sensor.errors import CompileError  # noqa: E402
from sensor.executor import EmulationResult, Emulator  # noqa: E402
from sensor.machine import ArrayConfig, Scamp5  # noqa: E402
from sensor.noise import NO_NOISE, NoiseModel, published_noise, resolve_noise, scamp5_noise  # noqa: E402
from sensor.program import Program, RegisterError, allocate_registers  # noqa: E402
from sensor.trace import write_trace  # noqa: E402
from sensor.tree import TreeCost, TreeResult, run_tree  # noqa: E402

__all__ = [
    "ArrayConfig",
    "CompileError",
    "EmulationResult",
    "Emulator",
    "INPUT_SCALE",
    "NO_NOISE",
    "NoiseModel",
    "Program",
    "RegisterError",
    "Scamp5",
    "TreeCost",
    "TreeResult",
    "allocate_registers",
    "compile",
    "compile_tables",
    "default_recurrent_white",
    "instructions",
    "levels",
    "recurrent_gain",
    "published_noise",
    "resolve_noise",
    "run_tree",
    "scamp5_noise",
    "write_trace",
]
