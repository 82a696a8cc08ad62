"""larq sees the in-pixel network as it is: every in-pixel kernel weight at its bit width and the
in-pixel MACs per frame, against counts made by hand; and models saved by pixelrnn-tf 0.1 still
load, with the outputs that version computed."""

import json
import pathlib
import shutil

import larq as lq
import numpy as np
import pytest

import pixelrnn_tf
from pixelrnn_tf._keras import tf
from pixelrnn_tf.layers import LegacyModelError

PIXELS = 64 * 64  # output pixels of every in-pixel convolution, per frame
DATA = pathlib.Path(__file__).parent / "data"

# arch -> (kernels of 5 x 5 applied to binary planes, kernels applied to {-1, 0, 1} planes)
# PixelRNN w_f, u_f, w_o, u_o; ConvLSTM 4 gates x (w, u); ConvGRU z, r, n with u_n on r . h;
# MGU f, n with u_n on f . h; SRNN w_h, u_h.
CELL_KERNELS = {"pixelrnn": (4, 0), "convlstm": (8, 0), "convgru": (5, 1), "mgu": (3, 1), "srnn": (2, 0), "cnn": (0, 0)}


def _rows(model):
    return {profile.name: profile for profile in lq.models.ModelProfile(model).layer_profiles}


@pytest.mark.parametrize("cnn_layers", [1, 2])
@pytest.mark.parametrize("arch", sorted(CELL_KERNELS))
def test_binary_kernels_are_1_bit_and_their_macs_binary(arch, cnn_layers):
    rows = _rows(pixelrnn_tf.build_model(arch=arch, cnn_layers=cnn_layers))
    encoder, recurrence = rows["in_pixel_cnn"], rows["recurrence"]
    # CNN: 16 kernels of 5 x 5 per layer, each layer's output 64 x 64 x 16; one 32-bit threshold
    assert encoder.weight_count(1) == 400 * cnn_layers and encoder.weight_count(32) == cnn_layers
    assert encoder.op_count("mac", 1) == 400 * PIXELS * cnn_layers and encoder.op_count("mac", 32) == 0
    binary, ternary_inputs = CELL_KERNELS[arch]
    assert recurrence.weight_count(1) == 25 * (binary + ternary_inputs)
    assert recurrence.op_count("mac", 1) == 25 * binary * PIXELS
    assert recurrence.op_count("mac", 2) == 25 * ternary_inputs * PIXELS
    assert recurrence.weight_count(32) == 0 and recurrence.op_count("mac", 32) == 0


@pytest.mark.parametrize("arch", ["raw", "diff"])
def test_cameras_have_nothing_in_the_pixel(arch):
    rows = _rows(pixelrnn_tf.build_model(arch=arch))
    assert "in_pixel_cnn" not in rows
    assert rows["recurrence"].weight_count() == 0 and rows["recurrence"].op_count("mac") == 0


def test_full_precision_and_ternary_kernels_count_at_their_width():
    full = _rows(pixelrnn_tf.build_model(arch="pixelrnn", binary=False))
    assert full["in_pixel_cnn"].weight_count(32) == 400 + 1 and full["in_pixel_cnn"].weight_count(1) == 0
    assert full["recurrence"].weight_count(32) == 100 and full["recurrence"].op_count("mac", 32) == 100 * PIXELS
    ternary = _rows(pixelrnn_tf.build_model(arch="pixelrnn", kernel_quantizer="ste_ternary", forget_threshold=True))
    assert ternary["in_pixel_cnn"].weight_count(2) == 400 and ternary["in_pixel_cnn"].op_count("mac", 2) == 400 * PIXELS
    # the learned forget-gate threshold is a 32-bit parameter, not a kernel entry: no MACs
    assert ternary["recurrence"].weight_count(2) == 100 and ternary["recurrence"].weight_count(32) == 1
    assert ternary["recurrence"].op_count("mac", 2) == 100 * PIXELS


def test_zero_points_are_training_parameters_without_macs():
    rows = _rows(pixelrnn_tf.build_model(arch="pixelrnn", zero_point=True))
    assert rows["in_pixel_cnn"].weight_count(32) == 1 + 1  # theta_1 and one zero-point
    assert rows["recurrence"].weight_count(32) == 4  # one zero-point per kernel
    assert rows["recurrence"].op_count("mac", 32) == 0 and rows["recurrence"].op_count("mac", 1) == 100 * PIXELS


def test_summary_tells_the_truth_about_1_bit_weights(capsys):
    """The table of Table 2's PixelRNN: 500 1-bit kernel entries, 2.05 M binary MACs per frame,
    and a compression ratio below 1 (it was 1.00 when larq saw 32-bit variables)."""
    model = pixelrnn_tf.build_model(arch="pixelrnn")
    lq.models.summary(model)
    printed = capsys.readouterr().out
    profile = lq.models.ModelProfile(model)
    assert profile.weight_count(1) == 500 and profile.op_count("mac", 1) == 500 * PIXELS
    assert "Ratio of MACs that are binarized  1.0000" in printed and "2.05 M" in printed


# ---------------------------------------------------------------------------------------------
# Models saved by pixelrnn-tf 0.1 (tests/data, written by commit 6c8a1e7 with its outputs)

LEGACY = ("pixelrnn_cnn2", "convlstm", "raw")


def _legacy_clips():
    return np.random.default_rng(5).standard_normal((2, 4, 16, 16, 1)).astype("float32")


@pytest.mark.parametrize("name", LEGACY)
def test_models_saved_by_version_0_1_load_with_their_outputs(name):
    expected = np.array(json.loads((DATA / "v0.1_outputs.json").read_text())[name])
    model = pixelrnn_tf.load_model(DATA / f"v0.1_{name}.keras")
    np.testing.assert_allclose(model.predict(_legacy_clips(), verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_plain_keras_loading_of_an_old_file_names_the_format_and_the_fix():
    # compile=False: a training checkpoint's optimizer state would fail Keras' own checks first
    with pytest.raises(LegacyModelError, match=r"pixelrnn-tf 0.1.*pixelrnn_tf.load_model.*pixelrnn upgrade-model"):
        tf.keras.models.load_model(DATA / "v0.1_pixelrnn_cnn2.keras", compile=False)


def test_upgrade_model_rewrites_an_old_file_for_plain_keras(tmp_path):
    from typer.testing import CliRunner

    from pixelrnn_cli.app import app

    path = tmp_path / "best.keras"
    shutil.copy(DATA / "v0.1_pixelrnn_cnn2.keras", path)
    result = CliRunner().invoke(app, ["upgrade-model", str(path)])
    assert result.exit_code == 0, result.output
    assert "rewrote" in result.output
    expected = np.array(json.loads((DATA / "v0.1_outputs.json").read_text())["pixelrnn_cnn2"])
    model = tf.keras.models.load_model(path)  # no conversion needed any more
    np.testing.assert_allclose(model.predict(_legacy_clips(), verbose=0), expected, rtol=1e-5, atol=1e-5)
    result = CliRunner().invoke(app, ["upgrade-model", str(path)])
    assert result.exit_code == 0 and "already" in result.output
