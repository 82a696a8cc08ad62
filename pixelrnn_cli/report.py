"""How the command line prints results: one function per result, returning text."""


def account_lines(figures):
    """pixelrnn_tf.InPixelAccount as the lines of `pixelrnn summary`."""
    lines = [
        f"In-pixel cost ({figures.sensor})",
        f"  in-pixel parameters            {figures.in_pixel_parameters:,}",
        f"  readout values per {figures.window} frames     {figures.readout_values_per_window:,}",
        f"  bandwidth reduction vs RAW     {figures.bandwidth_reduction_vs_raw:,.0f}x",
        f"  memory per pixel               {figures.memory_bits_per_pixel} bits "
        f"(of {figures.sensor_bits_per_macropixel} per macropixel)",
        f"  fits {figures.sensor:<25} {'yes' if figures.fits_sensor else 'no'}",
    ]
    lines += [f"    - {reason}" for reason in figures.reasons]
    return "\n".join(lines)


def metrics_lines(metrics):
    accuracy = metrics["accuracy"]
    return "\n".join(
        [
            f"Model {metrics['model']}",
            f"  test accuracy                  {accuracy['test']:.1%}  ({metrics['test_clips']} clips)",
            f"  val / train accuracy           {accuracy['val']:.1%} / {accuracy['train']:.1%}",
            f"  in-pixel parameters            {metrics['in_pixel_parameters']:,}",
            f"  readout values per {metrics['window']} frames     {metrics['readout_values_per_window']:,}"
            f"  ({metrics['bandwidth_reduction_vs_raw']:,.0f}x less than RAW)",
            f"  memory per pixel               {metrics['memory_bits_per_pixel']} bits"
            f"  (fits {metrics['sensor']}: {'yes' if metrics['fits_sensor'] else 'no'})",
        ]
    )


def evaluation_lines(result):
    return "\n".join(
        [
            f"{'split':<8}{'noise':<8}{'repeats':<9}{'accuracy':<10}std",
            f"{result['split']:<8}{'on' if result['noise'] else 'off':<8}{result['repeats']:<9}"
            f"{result['accuracy']:<10.1%}{result['std']:.1%}",
        ]
    )


def emulation_lines(result):
    lines = [
        f"Emulated {result['clips']} {result['split']} clips on SCAMP-5, noise {result['noise']}"
        + (", program calibrated for its drift" if result.get("calibrated") else "")
        + (f", recurrent_white {result['recurrent_white']:g}" if result.get("recurrent_white") else "")
        + f", {result['repeats']} repeat(s)",
        f"  accuracy, Keras model            {result['keras_accuracy']:.1%}",
        f"  accuracy, emulated readouts      {result['emulated_accuracy']:.1%}"
        + (f" +- {result['emulated_accuracy_std']:.1%}" if result["repeats"] > 1 else ""),
        f"  readouts equal to Keras          {result['readout_agreement']:.2%}",
        f"  saturated analog writes          {result['saturated_writes']:,}",
        f"  instructions per frame           {result['instructions_per_frame']:,.0f}",
        f"  estimated chip time per frame    {result['chip_ms_per_frame']:.3f} ms, of which instructions "
        f"{result['chip_instruction_ms_per_frame']:.3f} ms, the rest kernel launches and the readout link "
        "(the authors' program: about 3.5 ms on SCAMP-5)",
        f"  emulated frames per second       {result['emulated_frames_per_second']:,.1f}",
    ]
    if "trace" in result:
        lines.append(f"  trace                            {result['trace']['directory']} ({result['trace']['snapshots']} snapshots)")
    return "\n".join(lines)


def finetune_lines(result):
    return (
        f"Decoder fine-tuned on {result['readouts']} readouts (noise {result['noise']}): test accuracy on those "
        f"readouts {result['test_accuracy_before']:.1%} -> {result['test_accuracy_after']:.1%} "
        f"(best val {result['best_val_accuracy']:.1%}); wrote {result['model']}"
    )


def import_lines(checkpoint, result):
    lines = [
        f"Imported {checkpoint} ({result['arch']}, {result['classes']} classes)",
        f"  CNN threshold theta1           {result['cnn_threshold']:.4f}",
    ]
    if result["forget_threshold"] is not None:
        lines.append(f"  forget-gate threshold          {result['forget_threshold']:.4f}")
        noise = ", ".join(f"{k.replace('_noise_stddev', '')} {v}" for k, v in result["training_noise"].items())
        lines.append(f"  training noise (off at inference) {noise}")
    lines.append(f"Run directory: {result['run']}  (evaluate with `pixelrnn evaluate {result['run']}`)")
    return "\n".join(lines)


def export_lines(result, out):
    manifest = result["manifest"]
    lines = [f"Exported {manifest['model']} ({manifest['arch']}, K = {manifest['window']}, readout {manifest['readout_shape']}) to {out}"]
    lines += [f"  {name:<32}{entry['bytes']:>9} bytes  sha256 {entry['sha256'][:16]}" for name, entry in manifest["files"].items()]
    if result["sensor"] is not None:
        tables = result["sensor"]
        levels = [str(layer["threshold"]["sensor"]) for layer in tables["cnn_layers"]]
        lines.append(
            f"sensor levels (input_white {tables['input_white']:g}, recurrent_white {tables['recurrent_white']:g}): "
            f"CNN {', '.join(levels) or '-'}"
            + "".join(f"; {name} {entry['sensor']}" for name, entry in tables["recurrent_thresholds"].items() if entry["sensor"] is not None)
        )
    if result["decoder"] is not None:
        report = result["decoder"]
        check = report["verification"]
        same = check["micro_vs_litert"]
        lines.append(f"int8 decoder: flash {report['flash_bytes']} bytes, arena {report['arena_bytes']} bytes, ops {', '.join(report['ops'])}")
        lines.append(
            f"TFLite Micro vs LiteRT on {check['windows']} readouts: {same['differing_values']} of {same['values']} int8 logits "
            f"differ (max {same['max_difference']}); int8 agrees with float on {check['class_agreement']:.1%} of {check['clips']} clips"
        )
        if "accuracy_drop" in check:
            lines.append(
                f"accuracy: float {check['float_accuracy']:.1%}, int8 {check['int8_accuracy']:.1%}, drop {check['accuracy_drop']:+.1%}"
            )
    return "\n".join(lines)


def reproduction_lines(result):
    """The summary of a `pixelrnn reproduce` sweep as a Markdown table, then where its files are."""
    table3 = result["figure"] == "table3"
    head = "| setting | condition | runs | test accuracy |" if table3 else (
        "| setting | runs | test accuracy | memory bits per pixel | readout values per window |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in result["summary"]:
        if table3:
            accuracy = f"{row['accuracy_mean']:.1%} +- {row['accuracy_std']:.1%}"
            lines.append(f"| {row['setting']} | {row['condition']} | {row['runs']} | {accuracy} |")
        else:
            accuracy = f"{row['accuracy_test_mean']:.1%} +- {row['accuracy_test_std']:.1%}"
            lines.append(
                f"| {row['setting']} | {row['runs']} | {accuracy} | {row['memory_bits_per_pixel_mean']:.0f} "
                f"| {row['readout_values_per_window_mean']:,.0f} |"
            )
    lines += ["", f"Results: {result['results']}", f"Summary: {result['summary_csv']}", f"Figure:  {result['plot']}"]
    return "\n".join(lines)


def calibration_lines(report):
    """The held-out figures of `pixelrnn calibrate-noise`, one row per condition."""
    rows = report["held_out"]
    lines = [
        f"Fitted on {len(report['calibration_clips'])} clips; held out {len(report['held_out_clips'])}. "
        f"Readout displacement (rows, cols) {tuple(report['readout_shift'])}.",
        f"{'held-out readouts':<32}{'W1 to real':>11}{'correlation':>13}{'mean':>7}{'std':>7}{'decoder acc':>13}",
    ]
    for name, row in rows.items():
        distance = f"{row['wasserstein']:.2f}" if "wasserstein" in row else "0"
        correlation = f"{row['correlation']:.2f}" if "correlation" in row else "1"
        accuracy = f"{row['accuracy']:.1%}" if "accuracy" in row else "-"
        lines.append(f"{name:<32}{distance:>11}{correlation:>13}{row['mean']:>7.2f}{row['std']:>7.2f}{accuracy:>13}")
    if "held_out_expected" in report:
        row = report["held_out_expected"]
        lines.append(f"{'calibrated, expected value':<32}{row['wasserstein']:>11.2f}{row['correlation']:>13.2f}{row['mean']:>7.2f}{row['std']:>7.2f}{'-':>13}")
        lines.append("(the expected value is the mean of the draws without readout noise: a single draw correlates with the "
                     "chip at most about that correlation times its own with the expected value)")
    lines.append(f"Wrote {report['noise_file']} (use it with --noise) and {report['report_file']}" + (f", {report['plot']}" if "plot" in report else "") + ".")
    return "\n".join(lines)
