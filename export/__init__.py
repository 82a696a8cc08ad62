"""pixelrnn-export: a trained in-pixel model leaves the laptop.

The in-pixel half becomes weight tables a SCAMP-5 sensor program loads (`sensor_tables`,
`write_sensor_tables`); the off-sensor half becomes a full-integer int8 TFLite model for TFLite
Micro with its C sources (`export_decoder`); `export_model` does both, verified, atomically, with a
manifest. This package reads trained models and writes files; it never imports `training/` (the
command line, `export.cli`, is where a run directory's training split is loaded).
"""

from pixelrnn_tf._keras import tf  # noqa: F401  (selects Keras 2 before anything else)

from export.batchnorm import fold_batchnorm, folded_sign, sensor_threshold  # noqa: E402
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
    load_order,
    read_sensor_tables,
    recurrent_slot_table,
    sensor_tables,
    to_sensor_units,
    weights_header,
    write_sensor_tables,
)

__all__ = [
    "ExportError",
    "MANIFEST",
    "SPLITS",
    "cnn_slot_channels",
    "cnn_slot_table",
    "convert_int8",
    "export_decoder",
    "export_model",
    "float_logits",
    "fold_batchnorm",
    "folded_sign",
    "from_load_order",
    "load_data_file",
    "load_order",
    "load_source",
    "parse_splits",
    "read_sensor_tables",
    "readout_shape",
    "readouts_of",
    "recurrent_slot_table",
    "sensor_tables",
    "sensor_threshold",
    "to_sensor_units",
    "weights_header",
    "window_decoder",
    "write_sensor_tables",
]
