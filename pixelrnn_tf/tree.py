"""Tree networks: a root model's readout selects which child model the sensor loads next.

Liu et al. (2022) split tasks beyond one pixel processor array's capacity into "sub-tasks that can
be solved by tree networks that can be loaded dynamically". Here a tree is a root and G children,
each an ordinary in-pixel model of `build_model` (same per-node size: the same CNN, cell, window
and readout). On the sensor, the root runs on the clip's first `root_windows` windows of K frames;
its decoder, off the sensor, picks a child (say: which group of gestures); the sensor then loads
that child's weights and runs it on the rest of the clip, and the child's decoder names the class
within its group.

Training runs every node on every clip, with the class probability factored along the tree,

    log p(y) = log p_root(g(y)) + log p_child g(y)(y | g(y)),

so `TreeNetwork` returns those log-probabilities as logits and trains with `model.fit` on the
global labels and the usual sparse cross-entropy: the root learns to route, each child learns its
group (the gradient of a child reaches it through the clips of its group alone, since the others'
classes are not its). At inference the sensor runs one child only: `hard_predict` routes by the
root's argmax and takes the chosen child's argmax, what `sensor.run_tree` emulates.
"""

import numpy as np

from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError, ModelConfig
from pixelrnn_tf.models import build_model

_register = tf.keras.utils.register_keras_serializable(package="pixelrnn_tf")


def _check_groups(groups):
    groups = [tuple(int(c) for c in group) for group in groups]
    flat = sorted(c for group in groups for c in group)
    if len(groups) < 2 or any(len(group) < 2 for group in groups):
        raise ConfigError(f"A tree needs at least 2 children of at least 2 classes each; got groups {groups}.")
    if flat != list(range(len(flat))):
        raise ConfigError(f"The groups must hold every class 0 .. {len(flat) - 1} exactly once; got {groups}.")
    return groups


@_register
class TreeNetwork(tf.keras.Model):
    """A root and its children (Keras models clips -> logits, see build_tree); groups[g] lists the
    global classes of child g in the order of its outputs; root_windows: the windows of K frames
    the root sees before the child is loaded."""

    def __init__(self, root, children, groups, root_windows=1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(root, dict):
            root = tf.keras.layers.deserialize(root)
        children = [tf.keras.layers.deserialize(c) if isinstance(c, dict) else c for c in children]
        self.groups = _check_groups(groups)
        if len(children) != len(self.groups):
            raise ConfigError(f"{len(children)} children for {len(self.groups)} groups: give one child per group.")
        self.root = root
        self.children_models = list(children)
        self.root_windows = int(root_windows)
        self.num_classes = sum(len(group) for group in self.groups)
        window = root.get_layer("recurrence").window
        self.window = int(window)
        # where each child's log-probability lands among the global classes
        order = [c for group in self.groups for c in group]
        self._global_order = tf.constant([order.index(c) for c in range(self.num_classes)], tf.int32)

    @property
    def split_frame(self):
        return self.root_windows * self.window

    def node_logits(self, clips, training=None):
        """(root logits (B, G), [child g logits (B, n_g)]) of the frames each node sees."""
        first, rest = clips[:, : self.split_frame], clips[:, self.split_frame :]
        return self.root(first, training=training), [child(rest, training=training) for child in self.children_models]

    def call(self, clips, training=None):
        root, children = self.node_logits(clips, training)
        route = tf.nn.log_softmax(root, axis=-1)
        parts = [route[:, g : g + 1] + tf.nn.log_softmax(child, axis=-1) for g, child in enumerate(children)]
        return tf.gather(tf.concat(parts, axis=-1), self._global_order, axis=-1)

    def hard_predict(self, clips):
        """(child index, global class) per clip as the sensor runs it: the root's argmax routes,
        the chosen child's argmax names the class."""
        root, children = self.node_logits(clips)
        route = np.argmax(root.numpy(), axis=-1)
        local = np.stack([np.argmax(child.numpy(), axis=-1) for child in children], axis=-1)
        chosen = local[np.arange(len(route)), route]
        return route, np.array([self.groups[g][c] for g, c in zip(route, chosen)], np.int64)

    def get_config(self):
        return {
            **tf.keras.layers.Layer.get_config(self),  # Model.get_config is empty for subclasses
            "root": tf.keras.layers.serialize(self.root),
            "children": [tf.keras.layers.serialize(c) for c in self.children_models],
            "groups": [list(g) for g in self.groups],
            "root_windows": self.root_windows,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_tree(groups, config=None, root_windows=1, **overrides):
    """A TreeNetwork whose nodes are all `build_model(config, **overrides)` (one per-node size),
    the root with one output per group, child g with one per class of groups[g].

    >>> tree = build_tree([[0, 1, 2], [3, 4, 5]], arch="pixelrnn", frames=32, window=16)
    """
    groups = _check_groups(groups)
    config = ModelConfig.from_any(config, **overrides)
    if config.frames <= root_windows * config.window:
        raise ConfigError(
            f"frames (T={config.frames}) must leave windows for the child after the root's {root_windows} "
            f"window(s) of K={config.window}."
        )
    root = build_model(config, num_classes=len(groups), frames=root_windows * config.window)
    root = tf.keras.Model(root.inputs, root.outputs, name="root")
    children = []
    for g, group in enumerate(groups):
        child = build_model(config, num_classes=len(group), frames=config.frames - root_windows * config.window)
        children.append(tf.keras.Model(child.inputs, child.outputs, name=f"child_{g}"))
    return TreeNetwork(root, children, groups, root_windows, name=f"tree_{config.arch}")
