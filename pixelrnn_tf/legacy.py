"""Reading `.keras` files saved by pixelrnn-tf 0.1, before the in-pixel layers became larq layers.

Those files hold the encoder's kernels and thresholds as variables of the encoder itself
(`layers/in_pixel_cnn/vars/i`) and the cell's under the Keras RNN that ran it
(`layers/in_pixel_recurrence/rnn/cell/vars/i`). The model's config is unchanged, so the current
model is rebuilt from it and every variable is assigned from the old place: the in-pixel ones in
the order 0.1 created them (`legacy_variables()` of the encoder and the cell), everything else
(readout, decoder) by Keras' own path rules, which did not change.
"""

import json
import zipfile
from pathlib import Path

from pixelrnn_tf._keras import tf
from pixelrnn_tf.files import save_model_atomic

WEIGHTS = "model.weights.h5"
ENCODER_PATH = "layers/in_pixel_cnn"
CELL_PATH = "layers/in_pixel_recurrence/rnn/cell"


def _vars(h5, path):
    group = h5.get(f"{path}/vars")
    return [] if group is None else [group[str(i)][()] for i in range(len(group))]


def is_legacy_file(path):
    """Whether `path` is a .keras file of pixelrnn-tf 0.1 (kernels stored in the old places)."""
    import h5py

    try:
        with zipfile.ZipFile(path) as archive, archive.open(WEIGHTS) as handle, h5py.File(handle, "r") as h5:
            return bool(_vars(h5, ENCODER_PATH)) or f"{CELL_PATH}/vars" in h5
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def _assign(variables, values, where):
    if len(variables) != len(values):
        raise ValueError(
            f"{where}: the file holds {len(values)} variables where this model has {len(variables)}; "
            "it is not a pixelrnn-tf 0.1 file of this model."
        )
    for variable, value in zip(variables, values):
        variable.assign(value)


def load_legacy_model(path):
    """The model of a pixelrnn-tf 0.1 `.keras` file, in the current layout, with its weights."""
    import h5py
    from tf_keras.src.saving import saving_lib

    from pixelrnn_tf.models import ENCODER_LAYER, RECURRENCE_LAYER

    with zipfile.ZipFile(path) as archive:
        model = tf.keras.saving.deserialize_keras_object(json.loads(archive.read("config.json")))
        with archive.open(WEIGHTS) as handle, h5py.File(handle, "r") as h5:
            for layer in model.layers:
                if layer.name == ENCODER_LAYER:
                    _assign(layer.legacy_variables(), _vars(h5, ENCODER_PATH), f"{path}: the encoder")
                elif layer.name == RECURRENCE_LAYER:
                    _assign(layer.cell.legacy_variables(), _vars(h5, CELL_PATH), f"{path}: the cell")
        store = saving_lib.H5IOStore(WEIGHTS, archive=archive, mode="r")
        try:
            for layer in model.layers:
                if layer.name not in (ENCODER_LAYER, RECURRENCE_LAYER):
                    saving_lib._load_state(layer, store, None, inner_path=f"layers/{_saved_name(layer)}", visited_trackables=set())
        finally:
            store.close()
    return model


def _saved_name(layer):
    """The name Keras saved a top-level layer under: its class name in snake case."""
    from tf_keras.src.utils import generic_utils

    return generic_utils.to_snake_case(type(layer).__name__)


def upgrade_model_file(path, out=None):
    """Rewrite a pixelrnn-tf 0.1 `.keras` file in the current layout (at `out`, default in place,
    through a temporary file). Returns (the path written, whether the file was an old one)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    out = Path(out) if out else path
    if not is_legacy_file(path):
        if out != path:
            save_model_atomic(tf.keras.models.load_model(path), out)
        return out, False
    save_model_atomic(load_legacy_model(path), out)
    return out, True
