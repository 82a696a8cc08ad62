"""The PixelRNN paper's results as sweeps (So et al., CVPR 2024): Fig 2, Fig 3 and Table 3.

Each reproduction is a list of settings on training.sweep's runner: every run an ordinary run
directory under OUT/runs, OUT/results.csv one row per run (per run and condition for Table 3),
OUT/summary.csv the mean and std over seeds, and OUT/<figure>.png. Workflows only: nothing here
prints.

- fig2: accuracy vs in-pixel memory. RAW and DIFF cameras, and ConvLSTM, ConvGRU, MGU, SRNN and
  PixelRNN on a 1- or 2-layer CNN, binary or 32-bit float (float: sigmoid gates and tanh instead of
  sign). The SCAMP-5 budget, 32 bytes per 4x4 macropixel (256 bits per pixel of the 64x64 grid), is
  drawn as a line.
- fig3: accuracy vs readout bandwidth: PixelRNN with pooling 1x1 .. 8x8, then 16 .. 64 in steps of 8
  (floor pooling: 4096, 1024, 441, 256, 144, 100, 81, 64, 16, 4, 4, 1, 1, 1, 1 values per window).
  The paper's text pools before PixelRNN, the authors' code pools the readout; `pool_at` picks
  (default readout, see POOL_AT).
- table3: the noise-free and the noise-trained PixelRNN, each evaluated noise-free, with the Keras
  noise of the noise-trained setting, on the SCAMP-5 emulator with its noise preset, and on the
  emulator with the decoder fine-tuned on emulated readouts.
"""

import dataclasses

from pixelrnn_tf.config import CAMERA_ARCHS, ConfigError
from training import plots, sweep
from training.evaluate import evaluate
from training.run_config import DATASETS, config_name, point_name, resolve

FIGURES = ("fig2", "fig3", "table3")
SEEDS = {"fig2": 3, "fig3": 10, "table3": 3}
QUICK_SEEDS = 2
# --quick: small synthetic_gestures splits, a few epochs (each figure in under 20 min on 2 cores)
QUICK = {"data": {"train_clips": 384, "val_clips": 48, "test_clips": 144}, "epochs": 4}
QUICK_EMULATED_CLIPS = 48
FIG2_ARCHS = ("raw", "diff", "convlstm", "convgru", "mgu", "srnn", "pixelrnn")
FIG3_POOLS = (1, 2, 3, 4, 5, 6, 7, 8, 16, 24, 32, 40, 48, 56, 64)
# Why the readout is pooled by default: the authors' released code (and so their Fig 3 numbers)
# pools the readout, and that is what runs on the sensor program unchanged; `input` pools the CNN's
# tiled output before the recurrent cell, as the paper's text describes (smaller state and readout).
POOL_AT = ("readout", "input")
# Table 3's noise levels (model units): those of the bundled noise-trained configs
TABLE3_NOISE = {"cnn_noise_stddev": 0.6, "gate_noise_stddev": 0.6, "readout_noise_stddev": 1.0}
CONDITIONS = ("keras_noise_free", "keras_noise", "emulator_scamp5", "emulator_scamp5_finetuned")


@dataclasses.dataclass(frozen=True)
class Options:
    """What every reproduction takes from the command line."""

    dataset: str = "synthetic_gestures"
    manual_dir: str = None
    data_dir: str = None
    seeds: int = None
    epochs: int = None
    quick: bool = False
    pool_at: str = "readout"

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ConfigError(f"Unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}.")
        if self.pool_at not in POOL_AT:
            raise ConfigError(f"Unknown pool_at {self.pool_at!r}; choose one of {', '.join(POOL_AT)}.")
        if self.quick and self.dataset != "synthetic_gestures":
            raise ConfigError("--quick runs on synthetic_gestures; drop --quick for the full runs on real data.")
        for name in ("seeds", "epochs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}.")


def base_config(options, arch="pixelrnn", cnn_layers=1, binary=True):
    """The run config of one point: the dataset's bundled config for it, with the options applied."""
    config = resolve(config_name(options.dataset, arch, cnn_layers, binary))
    data = {"manual_dir": options.manual_dir, "data_dir": options.data_dir}
    epochs = options.epochs
    if options.quick:
        data.update(QUICK["data"])
        epochs = epochs or QUICK["epochs"]
    return config.replace(data=data, train={"epochs": epochs})


def fig2_settings(options):
    settings = []
    for arch in FIG2_ARCHS:
        has_cnn = arch not in CAMERA_ARCHS
        for cnn_layers in (1, 2) if has_cnn else (1,):
            for binary in (True, False) if has_cnn else (True,):
                columns = {"arch": arch, "cnn_layers": cnn_layers if has_cnn else 0, "binary": binary}
                name = point_name(arch, cnn_layers, binary)
                settings.append(sweep.Setting(name, base_config(options, arch, cnn_layers, binary), columns))
    return settings


def fig3_settings(options):
    key = "readout_pool" if options.pool_at == "readout" else "rnn_input_pool"
    base = base_config(options)
    return [
        sweep.Setting(f"pool_{pool}", base.replace(model={key: pool}), {"pool": pool, "pool_at": options.pool_at})
        for pool in FIG3_POOLS
    ]


def table3_settings(options):
    base = base_config(options)
    noisy = base.replace(model=TABLE3_NOISE)
    evaluate_conditions = _quick_conditions if options.quick else _table3_conditions
    return [
        sweep.Setting("noise_free", base, {"trained_with_noise": False}, evaluate_conditions),
        sweep.Setting("noise_trained", noisy, {"trained_with_noise": True}, evaluate_conditions),
    ]


def table3_conditions(run_dir, max_clips=None, repeats=3):
    """One row per evaluation condition of Table 3 for a finished run."""
    from pixelrnn_cli.workflows import emulate_run, finetune_decoder

    noise_free = evaluate(run_dir, split="test")
    noisy = evaluate(run_dir, split="test", noise_levels=TABLE3_NOISE, repeats=repeats)
    emulated = emulate_run(run_dir, noise="scamp5", repeats=repeats, max_clips=max_clips)
    tuned = finetune_decoder(run_dir, noise="scamp5", max_clips=max_clips)
    return [
        {"condition": "keras_noise_free", "accuracy": noise_free["accuracy"], "accuracy_spread": 0.0},
        {"condition": "keras_noise", "accuracy": noisy["accuracy"], "accuracy_spread": noisy["std"]},
        {"condition": "emulator_scamp5", "accuracy": emulated["emulated_accuracy"],
         "accuracy_spread": emulated["emulated_accuracy_std"]},
        {"condition": "emulator_scamp5_finetuned", "accuracy": tuned["test_accuracy_after"], "accuracy_spread": 0.0},
    ]


def _table3_conditions(run_dir):
    return table3_conditions(run_dir)


def _quick_conditions(run_dir):
    return table3_conditions(run_dir, max_clips=QUICK_EMULATED_CLIPS, repeats=2)


SETTINGS = {"fig2": fig2_settings, "fig3": fig3_settings, "table3": table3_settings}
GROUP_BY = {"fig2": ("setting",), "fig3": ("setting",), "table3": ("setting", "condition")}


def make_sweep(figure, options, out):
    if figure not in FIGURES:
        raise ConfigError(f"Unknown figure {figure!r}; choose one of {', '.join(FIGURES)}.")
    seeds = options.seeds or (QUICK_SEEDS if options.quick else SEEDS[figure])
    return sweep.Sweep(out, SETTINGS[figure](options), range(seeds), group_by=GROUP_BY[figure])


def reproduce(figure, options, out, executor="local", address=None, resources=None, progress=None):
    """Run (or resume) the sweep of `figure` into `out` and draw it. Returns {"figure", "rows",
    "summary", "results", "summary_csv", "plot"}."""
    runner = make_sweep(figure, options, out)
    rows = runner.run(executor=executor, address=address, resources=resources, progress=progress)
    summary = runner.summarize(rows)
    plot = runner.out_dir / f"{figure}.png"
    title = f"{figure}: {options.dataset}{' (quick)' if options.quick else ''}, {len(runner.seeds)} seeds"
    if figure == "fig2":
        plots.plot_accuracy_vs_memory(summary, plot, title)
    elif figure == "fig3":
        plots.plot_accuracy_vs_readout(summary, plot, title)
    else:
        plots.plot_noise_table(summary, CONDITIONS, plot, title)
    return {
        "figure": figure,
        "rows": rows,
        "summary": summary,
        "results": str(runner.out_dir / sweep.RESULTS),
        "summary_csv": str(runner.out_dir / sweep.SUMMARY),
        "plot": str(plot),
    }

