"""sensor: an emulator of focal-plane pixel processor arrays (SCAMP-5 and successors).

The machine is data (`ArrayConfig`, `Scamp5()`), programs are data (`Program`, built from the
instructions in `sensor.instructions`), `compile(model)` / `compile_tables(tables)` turn a
trained pixelrnn-tf model into a program, and `Emulator` runs programs on register planes with
TensorFlow, with the seeded analog noise model of `sensor.noise`. This package runs programs; it
knows nothing of training (the CLI bodies in `sensor.cli` are the one bridge).
"""

from pixelrnn_tf._keras import tf  # noqa: F401  (selects Keras 2 before TensorFlow loads)

from sensor import instructions  # noqa: E402
from sensor.compiler import CompileError, compile, compile_tables, model_tables  # noqa: E402,A004
from sensor.executor import EmulationResult, Emulator  # noqa: E402
from sensor.machine import ArrayConfig, Scamp5  # noqa: E402
from sensor.noise import NO_NOISE, NoiseModel, resolve_noise, scamp5_noise  # noqa: E402
from sensor.program import Program, RegisterError, allocate_registers  # noqa: E402

__all__ = [
    "ArrayConfig",
    "CompileError",
    "EmulationResult",
    "Emulator",
    "NO_NOISE",
    "NoiseModel",
    "Program",
    "RegisterError",
    "Scamp5",
    "allocate_registers",
    "compile",
    "compile_tables",
    "instructions",
    "model_tables",
    "resolve_noise",
    "scamp5_noise",
]
