"""The `pixelrnn-export` command line. Thin: parse, call `export.export_model`, print.

    pixelrnn-export RUN_DIR_OR_MODEL --split sensor,decoder --out DIR [--input-white 10]
                    [--representative-data FILE] [--evaluation-data FILE]

This is the one place of `export/` that reaches into `training/`: when RUN_DIR_OR_MODEL is a run
directory and no --representative-data is given, it loads that run's training split (and its test
split for the evaluation) with `training.data.load_splits`, lazily, and hands plain arrays to the
library. Everything else in `export/` sees only models and arrays.
"""

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def run_split(run_dir, split, max_clips):
    """{"clips", "labels"}: up to max_clips clips of a run's `split`, as training loaded them."""
    from training.data import load_splits
    from training.run_config import RunConfig

    config = RunConfig.from_dict(json.loads((Path(run_dir) / "config.json").read_text()))
    if config.data.dataset == "synthetic_gestures":
        # Synthetic clip i depends only on (seed, i): generate just the clips that are needed.
        wanted = f"{split}_clips"
        sizes = {key: 1 for key in ("train_clips", "val_clips", "test_clips")}
        sizes[wanted] = min(getattr(config.data, wanted), max_clips)
        config = config.replace(data=sizes)
    splits, _ = load_splits(config.data, config.model, config.train.batch_size)
    clips, labels, count = [], [], 0
    for batch_clips, batch_labels in splits[split]:
        clips.append(batch_clips.numpy())
        labels.append(batch_labels.numpy())
        count += len(clips[-1])
        if count >= max_clips:
            break
    return {"clips": np.concatenate(clips)[:max_clips], "labels": np.concatenate(labels)[:max_clips]}


@app.command()
def main_command(
    source: str = typer.Argument(..., metavar="RUN_DIR_OR_MODEL", help="A run directory (best.keras, config.json) or a .keras file."),
    split: str = typer.Option("sensor,decoder", help="sensor, decoder or sensor,decoder."),
    out: str = typer.Option(..., help="Output folder (replaced as a whole; never half-written)."),
    input_white: float = typer.Option(10.0, help="Sensor units of one binary input: thresholds become round(theta * input_white)."),
    representative_data: Optional[str] = typer.Option(
        None, help=".npy clips or .npz with clips or readouts: int8 calibration data. Default: the run's training split."
    ),
    evaluation_data: Optional[str] = typer.Option(
        None, help="Same format, with labels for the accuracy drop. Default: the run's test split, else the representative data."
    ),
    representative_clips: int = typer.Option(128, help="Clips taken from the run's training split for calibration."),
):
    """Export a trained model: sensor weight tables and an int8 TFLite Micro decoder."""
    from pixelrnn_tf.config import ConfigError

    import export

    try:
        splits = export.parse_splits(split)
        model, run_dir = export.load_source(source)
        representative = export.load_data_file(representative_data) if representative_data else None
        evaluation = export.load_data_file(evaluation_data) if evaluation_data else None
        if "decoder" in splits:
            if representative is None and run_dir is None:
                raise export.ExportError(
                    "The decoder split needs representative data: give --representative-data FILE (.npy clips or "
                    ".npz with clips or readouts), or export from a run directory."
                )
            if representative is None:
                representative = run_split(run_dir, "train", representative_clips)
                if evaluation is None:
                    evaluation = run_split(run_dir, "test", 10**9)
        result = export.export_model(
            model, out, splits, input_white, representative, evaluation, source_name=source
        )
    except (export.ExportError, ConfigError, FileNotFoundError) as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(code=2)

    manifest = result["manifest"]
    typer.echo(f"Exported {manifest['model']} ({manifest['arch']}, K = {manifest['window']}, readout {manifest['readout_shape']}) to {out}")
    for name, entry in manifest["files"].items():
        typer.echo(f"  {name:<32}{entry['bytes']:>9} bytes  sha256 {entry['sha256'][:16]}")
    if result["decoder"] is not None:
        report = result["decoder"]
        check = report["verification"]
        typer.echo(f"int8 decoder: flash {report['flash_bytes']} bytes, arena {report['arena_bytes']} bytes, ops {', '.join(report['ops'])}")
        same = check["micro_vs_litert"]
        typer.echo(
            f"TFLite Micro vs LiteRT on {check['windows']} readouts: {same['differing_values']} of {same['values']} int8 logits "
            f"differ (max {same['max_difference']}); int8 agrees with float on {check['class_agreement']:.1%} of {check['clips']} clips"
        )
        if "accuracy_drop" in check:
            typer.echo(
                f"accuracy: float {check['float_accuracy']:.1%}, int8 {check['int8_accuracy']:.1%}, drop {check['accuracy_drop']:+.1%}"
            )


def main(argv: Optional[list] = None):
    """Console-script entry point; typer exits with the command's status (2 for user errors)."""
    app(args=argv)


if __name__ == "__main__":
    main()
