"""Running an int8 flatbuffer on the two reference interpreters, and writing it for TFLite Micro.

TFLite Micro (the `tflite-micro` package: the same C++ kernels a microcontroller runs) measures
the tensor arena; LiteRT (`ai-edge-litert`) is the second, independent interpreter its int8
outputs must match bit for bit. The C sources follow the TFLite Micro examples (hello_world):
the flatbuffer as an `alignas(16) const unsigned char` array and its length, and a
`MicroMutableOpResolver<N>` registering exactly the ops the flatbuffer uses.
"""

import os
import re
import sys
import tempfile
import time

import numpy as np

from export.errors import ExportError

# TFLite builtin operator -> MicroMutableOpResolver method, for the ops a decoder may use and
# TFLite Micro implements. An op missing here fails the export (the device could not run it).
MICRO_OPS = {
    "ADD": "AddAdd",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "FULLY_CONNECTED": "AddFullyConnected",
    "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean",
    "MUL": "AddMul",
    "PAD": "AddPad",
    "QUANTIZE": "AddQuantize",
    "RELU": "AddRelu",
    "RESHAPE": "AddReshape",
    "SOFTMAX": "AddSoftmax",
    "SUB": "AddSub",
    "TANH": "AddTanh",
}


def builtin_ops(flatbuffer):
    """Names of the builtin operators the flatbuffer's operators use, in first-use order."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    codes = []
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        codes.append(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
    used = []
    for subgraph_index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(subgraph_index)
        for op_index in range(subgraph.OperatorsLength()):
            name = names[codes[subgraph.Operators(op_index).OpcodeIndex()]]
            if name not in used:
                used.append(name)
    unsupported = [name for name in used if name not in MICRO_OPS]
    if unsupported:
        raise ExportError(f"The int8 decoder uses ops the exporter cannot register for TFLite Micro: {', '.join(unsupported)}.")
    return used


def quantize(values, scale, zero_point):
    """float -> int8 as TFLite's QUANTIZE op does: round(x / scale) + zero_point, halves away from
    zero (std::round), saturated."""
    scaled = np.asarray(values, dtype=np.float64) / scale
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(values, scale, zero_point):
    return (np.asarray(values, dtype=np.float64) - zero_point) * scale


def io_quantization(flatbuffer):
    """((input scale, zero point), (output scale, zero point), input shape, output shape), read by LiteRT."""
    interpreter = litert_interpreter(flatbuffer)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    if inp["dtype"] != np.int8 or out["dtype"] != np.int8:
        raise ExportError(f"The decoder's input and output must be int8, got {inp['dtype']} and {out['dtype']}.")
    return inp["quantization"], out["quantization"], tuple(inp["shape"]), tuple(out["shape"])


def litert_interpreter(flatbuffer):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=bytes(flatbuffer))
    interpreter.allocate_tensors()
    return interpreter


def run_litert(flatbuffer, inputs):
    """int8 outputs of LiteRT for int8 inputs (n, *input shape without batch), one at a time."""
    interpreter = litert_interpreter(flatbuffer)
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    outputs = []
    for x in inputs:
        interpreter.set_tensor(inp, x[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out)[0].copy())
    return np.stack(outputs)


def compare_runtimes(on_micro, on_litert):
    """{"identical", "differing_values", "max_difference"} between the two runtimes' int8 outputs.

    The two round a requantised value that lies within about 1e-4 of a half-way point differently
    (TFLite Micro's two-step rounding multiply vs LiteRT's), so on rare inputs an output differs by
    one step; anything larger is a real disagreement."""
    difference = np.abs(np.asarray(on_micro, np.int64) - np.asarray(on_litert, np.int64))
    return {
        "identical": bool(not difference.any()),
        "differing_values": int((difference > 0).sum()),
        "values": int(difference.size),
        "max_difference": int(difference.max(initial=0)),
    }


def micro_interpreter(flatbuffer, arena_size=None):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(bytes(flatbuffer), arena_size=arena_size)


def run_micro(flatbuffer, inputs, arena_size=None):
    """int8 outputs of the TFLite Micro interpreter for int8 inputs, one at a time."""
    interpreter = micro_interpreter(flatbuffer, arena_size)
    outputs = []
    for x in inputs:
        interpreter.set_input(x[None], 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0))[0].copy())
    return np.stack(outputs)


def _capture_stderr(func):
    """What C++ code writes to file descriptor 2 while func runs (TFLite Micro's allocation log)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            func()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        return captured.read().decode(errors="replace")


def arena_bytes(flatbuffer, sample):
    """Tensor arena bytes the TFLite Micro interpreter used for one invoke, from its recording
    allocator (measured on this host: 64-bit pointers; a 32-bit microcontroller needs a little less)."""
    interpreter = micro_interpreter(flatbuffer)
    interpreter.set_input(sample[None], 0)
    interpreter.invoke()
    log = _capture_stderr(interpreter.print_allocations)
    match = re.search(r"Arena allocation total (\d+) bytes", log)
    if not match:
        raise ExportError(f"Could not read the arena size from TFLite Micro's allocation log:\n{log}")
    return int(match.group(1))


def invoke_seconds(flatbuffer, sample, repeats=200):
    """Median wall time of one TFLite Micro invoke on this host."""
    interpreter = micro_interpreter(flatbuffer)
    interpreter.set_input(sample[None], 0)
    interpreter.invoke()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# C sources ----------------------------------------------------------------------------------


def model_data_sources(flatbuffer, name="decoder_model_data"):
    """(.cc text, .h text): `alignas(16) const unsigned char g_<name>[]` and `g_<name>_len`."""
    symbol = f"g_{name}"
    header = "\n".join(
        [
            "// The int8 decoder flatbuffer, written by pixelrnn-export.",
            f"#ifndef PIXELRNN_{name.upper()}_H_",
            f"#define PIXELRNN_{name.upper()}_H_",
            "",
            f"extern const unsigned char {symbol}[];",
            f"extern const int {symbol}_len;",
            "",
            f"#endif  // PIXELRNN_{name.upper()}_H_",
            "",
        ]
    )
    data = bytes(flatbuffer)
    rows = []
    for start in range(0, len(data), 12):
        rows.append("    " + ", ".join(f"0x{b:02x}" for b in data[start : start + 12]) + ",")
    source = "\n".join(
        [
            "// The int8 decoder flatbuffer, written by pixelrnn-export.",
            f'#include "{name}.h"',
            "",
            f"alignas(16) const unsigned char {symbol}[] = {{",
            *rows,
            "};",
            f"const int {symbol}_len = {len(data)};",
            "",
        ]
    )
    return source, header


def op_resolver_header(ops):
    """op_resolver.h: a MicroMutableOpResolver<N> type and a function registering exactly `ops`."""
    lines = [
        "// The ops of the int8 decoder, read from its flatbuffer by pixelrnn-export.",
        "#ifndef PIXELRNN_DECODER_OP_RESOLVER_H_",
        "#define PIXELRNN_DECODER_OP_RESOLVER_H_",
        "",
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"',
        "",
        f"constexpr int kDecoderOpCount = {len(ops)};",
        "using DecoderOpResolver = tflite::MicroMutableOpResolver<kDecoderOpCount>;",
        "",
        "inline TfLiteStatus RegisterDecoderOps(DecoderOpResolver& resolver) {",
        *[f"  TF_LITE_ENSURE_STATUS(resolver.{MICRO_OPS[op]}());  // {op}" for op in ops],
        "  return kTfLiteOk;",
        "}",
        "",
        "#endif  // PIXELRNN_DECODER_OP_RESOLVER_H_",
        "",
    ]
    return "\n".join(lines)
