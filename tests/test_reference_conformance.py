"""Conformance with the PixelRNN authors' release: their Tulips1 checkpoint, imported without
torch, reproduces every stage their simulator dumped for the 10 test clips, to the last pixel,
their 9/10 accuracy, and the kernels of their SCAMP-5 weight table.

The reference files live outside the repository (../shared/reference, or $PIXELRNN_REFERENCE_DIR)
and are never copied in; without them these tests skip, saying what is missing.
"""

import ast
import os
import re
from pathlib import Path

import numpy as np
import pytest

import pixelrnn_tf
from pixelrnn_tf import torch_import

REFERENCE_FILES = ("lips_no_noise.pt", "tulips1_test_intermediates.npz", "lip_iw10.txt")


def reference_dir():
    configured = os.environ.get("PIXELRNN_REFERENCE_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1].parent / "shared" / "reference"


@pytest.fixture(scope="module")
def reference():
    folder = reference_dir()
    missing = [name for name in REFERENCE_FILES if not (folder / name).is_file()]
    if missing:
        pytest.skip(
            f"PixelRNN reference data not found: {', '.join(missing)} missing in {folder} "
            "(set PIXELRNN_REFERENCE_DIR to the folder holding the authors' release files)."
        )
    return folder


@pytest.fixture(scope="module")
def dump(reference):
    with np.load(reference / "tulips1_test_intermediates.npz") as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def model(reference):
    return torch_import.load_torch_checkpoint(reference / "lips_no_noise.pt")


@pytest.fixture(scope="module")
def stages(model, dump):
    return torch_import.trace_reference_stages(model, decode_sign(dump["0_binarized_x"]))


# Decoding the authors' 8-bit codes (reference README): +-1 maps were written as 255 (v + 1) / 2,
# real maps as clip(trunc(10 v + 127), 0, 255), with a few codes one lower.
def decode_sign(codes):
    return np.where(codes / 127.5 - 1.0 >= 0, 1.0, -1.0)


def decode_real(codes):
    return np.round((codes.astype(np.float64) - 127.0) / 10.0)


def as_written(values):
    """What survives the 8-bit image of a real-valued map: values clipped to [-12.7, 12.8]."""
    return np.round(np.clip(values, -12.7, 12.8))


def tile(maps):
    """(..., h, w, 16) -> (..., 4h, 4w) in the README's order: channel k at tile row k mod 4,
    tile column k div 4."""
    h, w = maps.shape[-3:-1]
    out = np.zeros(maps.shape[:-3] + (4 * h, 4 * w))
    for k in range(16):
        out[..., (k % 4) * h : (k % 4 + 1) * h, (k // 4) * w : (k // 4 + 1) * w] = maps[..., k]
    return out


def quadrants(top_left, top_right, bottom_left, bottom_right):
    return np.concatenate(
        [np.concatenate([top_left, top_right], -1), np.concatenate([bottom_left, bottom_right], -1)], -2
    )


STAGES = {
    "1_conv1": (decode_real, lambda s: as_written(tile(s.conv))),
    "2_conv1post": (decode_real, lambda s: as_written(tile(s.pooled))),
    "3_thresholded_quantized": (decode_sign, lambda s: s.thresholded),
    "4_hidden": (decode_sign, lambda s: s.hidden),
    "5_fi_fh_oi_oh": (decode_real, lambda s: as_written(quadrants(s.fi, s.fh, s.oi, s.oh))),
    "6_ft_ot": (
        lambda codes: np.concatenate([decode_sign(codes[..., :64, :]), decode_real(codes[..., 64:, :])], -2),
        lambda s: np.concatenate([s.next_hidden, as_written(s.output)], -2),
    ),
    "7_forget_gate_x": (decode_sign, lambda s: s.forget_gate),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_of_every_clip_and_frame(stage, dump, stages):
    decode, ours = STAGES[stage]
    expected, got = decode(dump[stage]), ours(stages)
    assert got.shape == expected.shape
    wrong = np.argwhere(np.any(got != expected, axis=(-2, -1)))
    assert not len(wrong), (
        f"{stage} differs in {len(wrong)} of {got.shape[0] * got.shape[1]} (clip, frame) pairs, "
        f"first {[tuple(map(int, w)) for w in wrong[:5]]}"
    )


def test_real_valued_stages_are_not_trivially_saturated(stages):
    """The comparison above is informative: maps take many values inside the 8-bit range."""
    for values in (stages.conv, stages.pooled, stages.fi, stages.output):
        assert len(np.unique(as_written(values))) >= 10


def test_released_accuracy_9_of_10(model, dump, stages):
    clips = decode_sign(dump["0_binarized_x"])[..., None]
    predictions = np.argmax(model.predict(clips, verbose=0), axis=-1)
    np.testing.assert_array_equal(predictions, np.argmax(stages.logits, axis=-1))
    assert int(np.sum(predictions == dump["labels"])) == 9


def test_keras_readouts_are_the_last_frame_output(model, dump, stages):
    readouts = pixelrnn_tf.sensor_model(model).predict(decode_sign(dump["0_binarized_x"])[..., None], verbose=0)
    np.testing.assert_array_equal(readouts[:, 0, :, :, 0], stages.output[:, -1])
    np.testing.assert_array_equal(decode_real(dump["6_ft_ot"][:, -1, 64:]), as_written(readouts[:, 0, :, :, 0]))


def test_kernel_images_of_the_dump(model, dump):
    cnn = model.get_layer("in_pixel_cnn").kernels[0].numpy()[:, :, 0, :]  # (5, 5, 16)
    grid = decode_sign(dump["convweights"])
    for k in range(16):  # kernel k at grid row k div 4, column k mod 4, 5-pixel bands between
        row, col = 10 * (k // 4), 10 * (k % 4)
        np.testing.assert_array_equal(grid[row : row + 5, col : col + 5], cnn[:, :, k], err_msg=f"channel {k}")
    cell = model.get_layer("recurrence").cell
    rnn = decode_sign(dump["rnnweights"])
    for name, (row, col) in {"w_f": (0, 0), "u_f": (0, 10), "w_o": (10, 0), "u_o": (10, 10)}.items():
        np.testing.assert_array_equal(
            rnn[row : row + 5, col : col + 5], cell.kernel(name).numpy()[:, :, 0, 0], err_msg=name
        )


# ---------------------------------------------------------------------------------------------
# The authors' SCAMP-5 weight table (lip_iw10.txt), read by an independent parser


def parse_weight_table(path):
    """name -> list of 25-entry kernel blocks (brace blocks) or a Python value (bracket lists)."""
    sections, name, body = {}, None, []
    for line in Path(path).read_text().splitlines():
        header = re.fullmatch(r"([\w.]+):\s*", line)
        if header:
            if name is not None:
                sections[name] = "\n".join(body)
            name, body = header.group(1), []
        else:
            body.append(line)
    sections[name] = "\n".join(body)
    table = {}
    for name, text in sections.items():
        text = text.strip()
        if text.startswith("{"):
            table[name] = [
                np.array([int(v) for v in block.split(",") if v.strip()])
                for block in re.findall(r"\{([-\d,\s]+)\}", text)
            ]
        else:
            table[name] = ast.literal_eval(text)
    return table


def from_load_order(block):
    """Entry n of a block is W[4 - n div 5, n mod 5]: rows from the bottom up."""
    kernel = np.zeros((5, 5))
    for n, value in enumerate(block):
        kernel[4 - n // 5, n % 5] = value
    return kernel


@pytest.fixture(scope="module")
def weight_table(reference):
    return parse_weight_table(reference / "lip_iw10.txt")


def test_weight_table_cnn_kernels_in_slot_order(model, weight_table):
    blocks = weight_table["cnn_model.conv1.weight"]
    assert len(blocks) == 16 and all(len(b) == 25 for b in blocks)
    kernels = model.get_layer("in_pixel_cnn").binary_kernel(0).numpy()[:, :, 0, :]
    for slot, block in enumerate(blocks):
        a, b = divmod(slot, 4)  # slot s = 4a + b holds channel 4b + a
        np.testing.assert_array_equal(from_load_order(block), kernels[:, :, 4 * b + a], err_msg=f"slot {slot}")
    # the slot order is a real permutation here: reading slots as channels would not match
    assert any(not np.array_equal(from_load_order(blocks[s]), kernels[:, :, s]) for s in range(16))


def test_weight_table_rnn_kernels(model, weight_table):
    cell = model.get_layer("recurrence").cell
    names = {
        "rnn_model.convgates_i.weight": "w_f",
        "rnn_model.convgates_h.weight": "u_f",
        "rnn_model.conv_out_i.weight": "w_o",
        "rnn_model.conv_out_h.weight": "u_o",
    }
    rnn_sections = [key for key in weight_table if key.startswith("rnn_model.")]
    assert rnn_sections == list(names)  # w_f, u_f, w_o, u_o: the sensor's load order
    for key, name in names.items():
        (block,) = weight_table[key]
        np.testing.assert_array_equal(from_load_order(block), cell.kernel(name).numpy()[:, :, 0, 0], err_msg=name)


def test_weight_table_thresholds_and_decoder(model, weight_table):
    encoder = model.get_layer("in_pixel_cnn")
    decoder = model.get_layer("decoder")
    close = lambda ours, theirs: np.testing.assert_allclose(
        ours, np.asarray(theirs, np.float64), rtol=1e-6
    )  # noqa: E731
    close(encoder.thresholds[0].numpy(), weight_table["cnn_model.thresh1"][0])
    assert round(float(encoder.thresholds[0].numpy()) * 10) == 1  # the sensor threshold at input_white 10
    close(decoder.offset.numpy(), weight_table["thresh3"][0])
    close(decoder.sign_quantizer(decoder.scale).numpy(), weight_table["fin_conv.weight"][0][0][0][0])
    close(decoder.batch_norm.gamma.numpy(), weight_table["fin_convpost.0.weight"])
    close(decoder.batch_norm.beta.numpy(), weight_table["fin_convpost.0.bias"])
    close(decoder.dense.kernel.numpy().T, weight_table["fc.weight"])
    close(decoder.dense.bias.numpy(), weight_table["fc.bias"])


def test_imported_run_directory_evaluates_like_a_trained_run(reference, dump, tmp_path):
    from pixelrnn_cli.workflows import import_checkpoint
    from training.run_config import RunConfig

    run = import_checkpoint(reference / "lips_no_noise.pt", tmp_path / "lips")["run"].path
    config = RunConfig.load(run / "config.json")
    assert config.data.dataset == "tulips1" and config.model.num_classes == 4
    reloaded = pixelrnn_tf.load_model(run / "best.keras")
    predictions = np.argmax(reloaded.predict(decode_sign(dump["0_binarized_x"])[..., None], verbose=0), axis=-1)
    assert int(np.sum(predictions == dump["labels"])) == 9


def _header_table(text, name):
    """The rows of `static const int8_t NAME[16][25] = {...};` in a C header, as a (16, 25) array."""
    body = re.search(rf"{name}\[16\]\[25\] = \{{(.*?)\}};", text, re.S).group(1)
    return np.array([[int(v) for v in row.split(",")] for row in re.findall(r"\{([-\d,\s]+)\}", body)])


def test_exported_sensor_tables_equal_the_authors_table(model, weight_table, tmp_path):
    """Export the imported model's sensor half and compare the C header the sensor program loads
    with the authors' own table, block for block, in their slot order."""
    from export import export_model

    export_model(model, tmp_path / "export", splits=("sensor",), input_white=10)
    header = (tmp_path / "export" / "sensor" / "weights.h").read_text()
    cnn = _header_table(header, "pixelrnn_cnn1_kernels")
    np.testing.assert_array_equal(cnn, np.stack(weight_table["cnn_model.conv1.weight"]))
    rnn = _header_table(header, "pixelrnn_rnn_kernels")
    authors = [weight_table[key][0] for key in weight_table if key.startswith("rnn_model.")]  # w_f, u_f, w_o, u_o
    np.testing.assert_array_equal(rnn[[5, 6, 9, 10]], np.stack(authors))
    assert not rnn[[s for s in range(16) if s not in (5, 6, 9, 10)]].any()
    # Our level is the midpoint below the first passing count, 10 * ceil(0.1405) - 5 = 5; the
    # authors' table rounds, round(0.1405 * 10) = 1. For this theta both pass exactly the counts
    # c >= 1 of the model (a count is 10 c on the sensor).
    assert "#define PIXELRNN_CNN1_THRESHOLD 5" in header
    theta = float(model.get_layer("in_pixel_cnn").thresholds[0].numpy())
    counts = np.arange(-25, 26)
    np.testing.assert_array_equal(10 * counts >= 5, counts >= theta)
    np.testing.assert_array_equal(10 * counts >= round(theta * 10), counts >= theta)


@pytest.mark.slow
def test_imported_model_on_the_emulator_reads_out_what_keras_reads_out(model, dump):
    """The authors' model, compiled to a SCAMP-5 program, on the noise-free emulator: the readouts
    of the 10 test clips equal the Keras readouts in every pixel."""
    import sensor

    clips = decode_sign(dump["0_binarized_x"])[..., None].astype("float32")
    expected = pixelrnn_tf.sensor_model(model)(clips).numpy()
    result = sensor.Emulator(sensor.compile(model, input_white=5), jit=False).run(clips)
    assert result.saturated == 0
    np.testing.assert_array_equal(result.readouts, expected)
