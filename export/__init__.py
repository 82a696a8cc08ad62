"""Export: a trained in-pixel model leaves the laptop.

The in-pixel half becomes weight tables a SCAMP-5 sensor program loads (`sensor_tables`,
`write_sensor_tables`), with every threshold as the level the sensor compares at
(`sensor.levels`); the off-sensor half becomes a full-integer int8 TFLite model for TFLite Micro
with its C sources (`export_decoder`); `export_model` does both, verified, atomically, with a
manifest. This package reads trained models and writes files; it never imports `training/` (the
`pixelrnn export` command, in pixelrnn_cli, is where a run directory's data is loaded).
"""

from pixelrnn_tf._keras import tf  # noqa: F401  (selects Keras 2 before anything else)

from export.decoder import convert_int8, float_logits, readout_shape, window_decoder  # noqa: E402
from export.errors import ExportError  # noqa: E402
from export.exporter import (  # noqa: E402
    MANIFEST,
    SPLITS,
    export_decoder,
    export_model,
    load_data_file,
    load_source,
    parse_splits,
    readouts_of,
)
from export.sensor_tables import (  # noqa: E402
    cnn_slot_channels,
    cnn_slot_table,
    from_load_order,
    load_in_pixel_tables,
    load_order,
    read_sensor_tables,
    recurrent_slot_table,
    sensor_tables,
    weights_header,
    write_sensor_tables,
)
from export.tree import TREE_FILE, export_tree, read_tree  # noqa: E402

__all__ = [
    "ExportError",
    "MANIFEST",
    "TREE_FILE",
    "SPLITS",
    "cnn_slot_channels",
    "cnn_slot_table",
    "convert_int8",
    "export_decoder",
    "export_model",
    "export_tree",
    "float_logits",
    "from_load_order",
    "load_data_file",
    "load_in_pixel_tables",
    "load_order",
    "load_source",
    "parse_splits",
    "read_sensor_tables",
    "read_tree",
    "readout_shape",
    "readouts_of",
    "recurrent_slot_table",
    "sensor_tables",
    "weights_header",
    "window_decoder",
    "write_sensor_tables",
]
