"""Across the house: a model exported to sensor tables runs on the emulator from those files alone
and reads out what the Keras model reads out; the authors' imported model does the same."""

import numpy as np
import pytest

import pixelrnn_tf
from pixelrnn_tf._keras import tf
from sensor import Emulator, compile_tables
from sensor.compiler import CompileError
from sensor.tables import load_tables


def _model(cnn_layers, seed):
    tf.keras.utils.set_random_seed(seed)
    model = pixelrnn_tf.build_model(
        arch="pixelrnn", cnn_layers=cnn_layers, frames=4, window=2, forget_threshold=True, learned_input_threshold=True
    )
    rng = np.random.default_rng(seed)
    encoder = model.get_layer("in_pixel_cnn")
    for threshold in encoder.thresholds:
        threshold.assign(rng.uniform(0.2, 3.0))
    encoder.input_threshold.assign(rng.uniform(-0.3, 0.3))
    model.get_layer("recurrence").cell.theta.assign(rng.uniform(-3, 3))
    return model


@pytest.mark.parametrize("cnn_layers", [1, 2])
def test_exported_tables_run_on_the_emulator_like_the_model(cnn_layers, tmp_path):
    from export import export_model

    model = _model(cnn_layers, seed=cnn_layers)
    export_model(model, tmp_path / "out", splits=("sensor",), input_white=10)
    program = compile_tables(load_tables(tmp_path / "out" / "sensor"), input_white=5)  # 5: no CNN sum saturates
    clips = np.random.default_rng(3).standard_normal((2, 4, 64, 64, 1)).astype("float32")
    result = Emulator(program, jit=False).run(clips)
    assert result.saturated == 0
    np.testing.assert_array_equal(result.readouts, pixelrnn_tf.sensor_model(model)(clips).numpy())


def test_load_tables_names_a_missing_folder(tmp_path):
    with pytest.raises(CompileError, match="expected weights.json written by `pixelrnn-export --split sensor`"):
        load_tables(tmp_path)
