"""Running a tree network (pixelrnn_tf.tree) on the emulated sensor: one program per node, loaded
as the root's readout decides.

Per clip the sensor runs the root's program on the first root_windows windows; the root's readout
leaves the chip, the root's decoder (off the sensor, as on the chip's host) picks a child, the
controller loads that child's weights, and the sensor runs the child's program on the rest of the
clip. Clips routed to the same child are emulated together.

The weight reload. Our programs apply weights as `load_pattern` calls whose arguments are the
weight bits (sensor.compiler), so the weights live in the controller's memory, not in the array's
registers: loading a child is sending its weight table to the controller over the host link
(`table_bytes`: every kernel bit and one byte per comparator level) and switching the program,
one controller call. No array instruction runs for it; `TreeCost` counts its bytes, its call and
its time next to the nodes' instructions and chip time (sensor.Program.chip_time).
"""

import dataclasses
from typing import Tuple

import numpy as np

from pixelrnn_tf.models import DECODER_LAYER
from pixelrnn_tf.tables import in_pixel_tables
from sensor.compiler import compile_tables
from sensor.executor import Emulator
from sensor.machine import Scamp5


def table_bytes(tables):
    """Bytes of a node's weight table as the controller holds it: one bit per kernel entry (two
    for ternary kernels), one byte per comparator level (per CNN layer, or per channel with
    BatchNorm folded, and per recurrent threshold)."""
    kernels = list(tables.cnn_kernels) + list(tables.cell_kernels.values())
    ternary = any(np.any(np.asarray(k) == 0) for k in kernels)
    bits = sum(int(np.asarray(k).size) for k in kernels) * (2 if ternary else 1)
    levels = sum(len(t) if isinstance(t, tuple) else 1 for t in tables.cnn_thresholds) + (1 if tables.cell_kernels else 0)
    return int(np.ceil(bits / 8)) + levels


@dataclasses.dataclass(frozen=True)
class TreeCost:
    """Per node: instructions and chip seconds per frame; per reload: bytes, seconds; per clip: the
    mean chip seconds of the tree (root frames, one reload, child frames)."""

    node_names: Tuple[str, ...]
    instructions_per_frame: Tuple[float, ...]
    seconds_per_frame: Tuple[float, ...]
    reload_bytes: Tuple[int, ...]
    reload_seconds: Tuple[float, ...]
    seconds_per_clip: float

    def table(self):
        """A Markdown table of the nodes."""
        lines = ["| node | instructions / frame | chip ms / frame | reload bytes | reload ms |", "|---|---|---|---|---|"]
        for n, name in enumerate(self.node_names):
            lines.append(
                f"| {name} | {self.instructions_per_frame[n]:,.0f} | {self.seconds_per_frame[n] * 1e3:.3f} | "
                f"{self.reload_bytes[n]:,} | {self.reload_seconds[n] * 1e3:.3f} |"
            )
        return "\n".join(lines)


@dataclasses.dataclass
class TreeResult:
    """routes: child per clip; predictions: global class per clip; root_readouts and
    child_readouts (per clip, of its child) in model units; cost: TreeCost."""

    routes: np.ndarray
    predictions: np.ndarray
    root_readouts: np.ndarray
    child_readouts: list
    cost: TreeCost


def _node_cost(program, tables, config):
    reload = table_bytes(tables)
    return program.instructions_per_frame(), program.chip_time(config)["total"], reload, config.call_s + reload / config.link_bytes_per_s


def run_tree(tree, clips, config=None, noise=None, seed=0, compile_options=None):
    """Emulate `tree` (a pixelrnn_tf.tree.TreeNetwork) on clips (B, T, H, W, 1) as the sensor runs
    it: the root's program, the root's decoder routes, the routed child's program. Returns a
    TreeResult. compile_options: keyword arguments of sensor.compile (input_white, ...)."""
    config = config or Scamp5()
    clips = np.asarray(clips, np.float32)
    nodes = [tree.root] + list(tree.children_models)
    tables = [in_pixel_tables(node) for node in nodes]
    programs = [compile_tables(t, config=config, **(compile_options or {})) for t in tables]
    split = tree.split_frame
    root = Emulator(programs[0], config, noise=noise, seed=seed).run(clips[:, :split])
    routes = np.argmax(tree.root.get_layer(DECODER_LAYER)(root.readouts).numpy(), axis=-1)
    predictions = np.full(len(clips), -1, np.int64)
    child_readouts = [None] * len(clips)
    for g, child in enumerate(tree.children_models):
        routed = np.flatnonzero(routes == g)
        if not routed.size:
            continue
        result = Emulator(programs[g + 1], config, noise=noise, seed=seed + 1 + g).run(clips[routed, split:])
        local = np.argmax(child.get_layer(DECODER_LAYER)(result.readouts).numpy(), axis=-1)
        predictions[routed] = np.asarray(tree.groups[g])[local]
        for i, clip in enumerate(routed):
            child_readouts[clip] = result.readouts[i]
    costs = [_node_cost(p, t, config) for p, t in zip(programs, tables)]
    frames_child = clips.shape[1] - split
    per_clip = [split * costs[0][1] + costs[g + 1][3] + frames_child * costs[g + 1][1] for g in routes]
    cost = TreeCost(
        node_names=tuple(node.name for node in nodes),
        instructions_per_frame=tuple(c[0] for c in costs),
        seconds_per_frame=tuple(c[1] for c in costs),
        reload_bytes=tuple(c[2] for c in costs),
        reload_seconds=tuple(c[3] for c in costs),
        seconds_per_clip=float(np.mean(per_clip)) if per_clip else 0.0,
    )
    return TreeResult(routes, predictions, root.readouts, child_readouts, cost)
