"""Every arch of the model library compiled for SCAMP-5: instructions, registers and chip time.

Builds each arch (random binary weights; 1 and 2 CNN layers; ternary kernels where asked),
compiles it with sensor.compile, allocates its registers on SCAMP-5 and prints one Markdown
table: instructions and words per frame, kernel launches and controller calls per frame, the
estimated chip time by term (sensor.Program.chip_time), the readout bytes per frame, the
registers the program holds at once and whether it fits. No emulation: it runs in seconds.

    python benchmarks/bench_archs.py [--ternary] [--calibrated]
"""

import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pixelrnn_tf  # noqa: E402
import sensor  # noqa: E402
from pixelrnn_tf.cells import CELLS  # noqa: E402
from pixelrnn_tf.config import CAMERA_ARCHS  # noqa: E402


def registers_used(program, config):
    """(analog, digital) physical registers the allocated program names, FLAG and NEWS left out."""
    allocated = program.allocate(config)
    names = {r for s in allocated.sections for i in allocated.instructions(s) for r in i.registers()}
    analog = {r for r in names if config.kind(r) == "analog" and r != config.news}
    digital = {r for r in names if config.kind(r) == "digital" and r != config.flag}
    return len(analog), len(digital)


def row(arch, cnn_layers, options, calibrated, config):
    model = pixelrnn_tf.build_model(arch=arch, cnn_layers=cnn_layers, **options)
    name = f"{arch}" + ("" if arch in CAMERA_ARCHS else f", {cnn_layers} layer{'s' if cnn_layers > 1 else ''}")
    try:
        program = sensor.compile(model, drift="scamp5" if calibrated else None)
        analog, digital = registers_used(program, config)
    except (sensor.CompileError, sensor.RegisterError) as error:
        return f"| {name} | - | - | - | - | - | - | no: {error} |"
    time = program.chip_time(config)
    kernels, calls = program.kernels_per_frame()
    return (
        f"| {name} | {program.instructions_per_frame():,.0f} | {program.words_per_frame(config):,.0f} | "
        f"{kernels + calls:,.0f} | {time['instructions'] * 1e3:.3f} + {time['kernel launches and calls'] * 1e3:.3f} + "
        f"{time['readout link'] * 1e3:.3f} = **{time['total'] * 1e3:.2f}** | {program.readout_bytes_per_frame():,.0f} | "
        f"{analog} / {len(config.analog_registers)}, {digital} / {len(config.digital_registers)} | yes |"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ternary", action="store_true", help="ternary kernels (kernel_quantizer=ste_ternary)")
    parser.add_argument("--calibrated", action="store_true", help="programs calibrated for the SCAMP-5 preset's drift")
    args = parser.parse_args(argv)
    config = sensor.Scamp5()
    options = {"kernel_quantizer": "ste_ternary"} if args.ternary else {}
    print(f"# {platform.node()} {platform.machine()} {os.cpu_count()} cores; SCAMP-5 at {config.clock_hz / 1e6:g} MHz, "
          f"{config.call_s * 1e6:g} us per launch or call; {'ternary' if args.ternary else 'binary'} kernels, "
          f"{'calibrated' if args.calibrated else 'exact'} programs")
    print("| arch | instructions / frame | words / frame | launches + calls / frame | chip ms / frame "
          "(words + launches + link) | readout bytes / frame | analog, digital registers | fits SCAMP-5 |")
    print("|---|---|---|---|---|---|---|---|")
    for arch in CELLS:
        for cnn_layers in (1,) if arch in CAMERA_ARCHS else (1, 2):
            print(row(arch, cnn_layers, options if arch not in CAMERA_ARCHS else {}, args.calibrated, config), flush=True)


if __name__ == "__main__":
    main()
