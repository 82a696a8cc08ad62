"""Exporting a tree network (pixelrnn_tf.tree): one export per node plus the tree.

    out/
      tree.json       the nodes, the routing (root output g -> child folder), the classes of each
                      child, the root's windows, and per node its weight table's size
      root/           an ordinary export of the root (sensor tables, and the decoder if asked)
      child_0/ ...    the same for every child

A host program runs the root's tables on the sensor, decodes the root's readout, and loads the
weight table of the child that tree.json names for that output. The whole folder is staged
beside `out` and moved into place at the end, so `out` is never a half-written tree.
"""

import json
import shutil
import tempfile
from pathlib import Path

from pixelrnn_tf.tables import in_pixel_tables
from sensor.tree import table_bytes

from export.errors import ExportError
from export.exporter import MANIFEST, _move_into_place, export_model
from export.sensor_tables import dumps

TREE_FILE = "tree.json"
TREE_FORMAT = "pixelrnn-tree/1"


def export_tree(tree, out, splits=("sensor",), input_white=10, representative=None, **options):
    """Export every node of `tree` with export.export_model into out/<node name>/ and write
    out/tree.json. representative: {node name: data} for the decoder split (see export_model).
    Returns the contents of tree.json."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / TREE_FILE).is_file())):
        raise ExportError(f"{out} exists and is not a previous tree export (no {TREE_FILE} in it); choose an empty or new --out folder.")
    nodes = [tree.root] + list(tree.children_models)
    names = [node.name for node in nodes]
    if len(set(names)) != len(names):
        raise ExportError(f"The tree's nodes need distinct names to get a folder each; got {names}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        for node in nodes:
            data = (representative or {}).get(node.name)
            export_model(node, staging / node.name, splits=splits, input_white=input_white, representative=data, **options)
        description = {
            "format": TREE_FORMAT,
            "model": tree.name,
            "window": tree.window,
            "root": {"folder": tree.root.name, "windows": tree.root_windows, "table_bytes": table_bytes(in_pixel_tables(tree.root))},
            "routing": [
                {
                    "root_output": g,
                    "folder": child.name,
                    "classes": list(tree.groups[g]),
                    "table_bytes": table_bytes(in_pixel_tables(child)),
                }
                for g, child in enumerate(tree.children_models)
            ],
            "rule": "run root/ on the first root.windows windows; its decoder's argmax g picks routing[g]: load that "
            "folder's sensor tables and run them on the rest of the clip; its decoder's argmax i is class classes[i]",
        }
        (staging / TREE_FILE).write_text(dumps(description))
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return description


def read_tree(folder):
    """tree.json of an exported tree, with every node folder checked to hold its export."""
    folder = Path(folder)
    path = folder / TREE_FILE
    if not path.is_file():
        raise ExportError(f"No tree export at {folder}: expected {TREE_FILE} written by export_tree.")
    description = json.loads(path.read_text())
    if description.get("format") != TREE_FORMAT:
        raise ExportError(f"{path} has format {description.get('format')!r}; this version reads {TREE_FORMAT}.")
    for node in [description["root"]] + description["routing"]:
        if not (folder / node["folder"] / MANIFEST).is_file():
            raise ExportError(f"{folder / node['folder']} is missing: the tree names it, but it holds no export.")
    return description
