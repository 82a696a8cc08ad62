"""Figures a person would rather look at than read: the confusion matrix, training curves, and the
paper's figures drawn from a sweep's summary rows (training.sweep.summarize)."""

import matplotlib

matplotlib.use("Agg")  # runs on machines without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pixelrnn_tf.files import save_figure_atomic  # noqa: E402

# SCAMP-5's feature memory: 32 bytes per 4x4 macropixel, i.e. per pixel of the 64x64 grid
SCAMP5_BITS_PER_MACROPIXEL = 256


def confusion_matrix(labels, predictions, num_classes):
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def plot_confusion(matrix, class_names, path, title):
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(class_names), 0.8 + 0.6 * len(class_names)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def plot_curves(history, path, title):
    """history: a dict of per-epoch lists as Keras' History.history (loss, accuracy, val_*)."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key, ax in (("loss", loss_ax), ("accuracy", acc_ax)):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in history:
                ax.plot(epochs, history[prefix + key], style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def _errorbar(ax, rows, x_key, label=None, **style):
    rows = sorted(rows, key=lambda row: row[x_key])
    x = [row[x_key] for row in rows]
    y = [100 * row["accuracy_test_mean"] for row in rows]
    err = [100 * row["accuracy_test_std"] for row in rows]
    ax.errorbar(x, y, yerr=err, capsize=3, label=label, **style)


def plot_accuracy_vs_memory(summary, path, title, budget_bits=SCAMP5_BITS_PER_MACROPIXEL):
    """Fig 2: test accuracy vs in-pixel memory per pixel, one marker shape and colour per arch,
    filled for binary and hollow for float, small for a 1-layer and large for a 2-layer CNN (the
    two sit at the same memory, so they are drawn a little apart), the sensor's budget as a line."""
    fig, ax = plt.subplots(figsize=(8, 5))
    archs = ["raw", "diff", "convlstm", "convgru", "mgu", "srnn", "pixelrnn"]
    markers = dict(zip(archs, "sDo^vPX"))
    colours = dict(zip(archs, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for row in summary:
        binary = row["binary"] in (True, "True")
        layers = int(row.get("cnn_layers", 1))
        shift = {0: 1.0, 1: 2**-0.05, 2: 2**0.05}[layers]
        arch = row["arch"]
        ax.errorbar(
            row["memory_bits_per_pixel_mean"] * shift, 100 * row["accuracy_test_mean"], yerr=100 * row["accuracy_test_std"],
            marker=markers.get(arch, "o"), color=colours.get(arch), markersize=9 if layers == 2 else 6,
            fillstyle="full" if binary else "none", capsize=3, linestyle="none",
        )
    for arch in dict.fromkeys(row["arch"] for row in summary):
        ax.plot([], [], marker=markers.get(arch, "o"), color=colours.get(arch), linestyle="none", label=arch)
    ax.plot([], [], marker="o", color="grey", fillstyle="none", linestyle="none", label="hollow: 32-bit float")
    ax.plot([], [], marker="o", color="grey", markersize=9, linestyle="none", label="large: 2-layer CNN")
    ax.axvline(budget_bits, color="k", linestyle="--", linewidth=1)
    ax.text(budget_bits, ax.get_ylim()[0], " SCAMP-5: 32 bytes per 4x4 macropixel", rotation=90, va="bottom", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("in-pixel memory (bits per pixel of the 64x64 grid; log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def plot_accuracy_vs_readout(summary, path, title):
    """Fig 3: test accuracy vs readout values per window (log scale), mean and std over seeds."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    _errorbar(ax, summary, "readout_values_per_window_mean", "PixelRNN", marker="o")
    for row in summary:
        ax.annotate(f"{int(row['pool'])}", (row["readout_values_per_window_mean"], 100 * row["accuracy_test_mean"]),
                    textcoords="offset points", xytext=(3, 4), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("readout values per window of K frames (log scale; labels: pool size)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def plot_noise_table(summary, conditions, path, title):
    """Table 3 as grouped bars: one group per evaluation condition, one bar per trained model."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    settings = list(dict.fromkeys(row["setting"] for row in summary))
    width = 0.8 / len(settings)
    for index, setting in enumerate(settings):
        by_condition = {row["condition"]: row for row in summary if row["setting"] == setting}
        present = [c for c in conditions if c in by_condition]
        x = [conditions.index(c) + (index - (len(settings) - 1) / 2) * width for c in present]
        y = [100 * by_condition[c]["accuracy_mean"] for c in present]
        err = [100 * by_condition[c]["accuracy_std"] for c in present]
        ax.bar(x, y, width, yerr=err, capsize=3, label=setting)
    ax.set_xticks(range(len(conditions)), [c.replace("_", " ") for c in conditions], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)
