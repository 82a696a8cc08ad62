"""Tree networks: the Keras model, the emulated sequence of programs and the export."""


import numpy as np
import pytest

import export
import pixelrnn_tf
from pixelrnn_tf._keras import tf
from pixelrnn_tf.config import ConfigError
from pixelrnn_tf.tree import TreeNetwork, build_tree
from sensor.tree import run_tree, table_bytes
from training import synthetic_orientations

GROUPS = [[0, 2], [1, 3, 4]]


def _tree(seed=0, **options):
    tf.keras.utils.set_random_seed(seed)
    return build_tree(GROUPS, arch="pixelrnn", frames=4, window=2, **options)


def _clips(n=6, seed=1):
    return np.random.default_rng(seed).standard_normal((n, 4, 64, 64, 1)).astype("float32")


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_tree_logits_are_the_log_of_route_times_child_probabilities():
    tree, clips = _tree(), _clips()
    root, children = (t.numpy() if hasattr(t, "numpy") else [c.numpy() for c in t] for t in tree.node_logits(clips))
    expected = np.zeros((len(clips), 5))
    for g, group in enumerate(GROUPS):
        for i, c in enumerate(group):
            expected[:, c] = _softmax(root)[:, g] * _softmax(children[g])[:, i]
    np.testing.assert_allclose(np.exp(tree(clips).numpy()), expected, rtol=1e-5, atol=1e-7)
    # the root sees the first window only, the children the rest
    np.testing.assert_array_equal(root, tree.root(clips[:, :2]).numpy())
    routes, classes = tree.hard_predict(clips)
    np.testing.assert_array_equal(routes, root.argmax(-1))
    np.testing.assert_array_equal(classes, [GROUPS[g][children[g][n].argmax()] for n, g in enumerate(routes)])


def test_tree_trains_with_fit_and_round_trips_through_a_keras_file(tmp_path):
    tree = build_tree(GROUPS, arch="mgu", frames=4, window=2, height=16, width=16)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 40)
    clips = rng.standard_normal((40, 4, 16, 16, 1)).astype("float32")
    for n, label in enumerate(labels):  # a learnable task: the class sets a bright column band
        clips[n, :, :, 3 * label : 3 * label + 3] += 2.0
    tree.compile(tf.keras.optimizers.Adam(0.02), tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = tree.fit(clips, labels, epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    tree.save(tmp_path / "tree.keras")
    restored = tf.keras.models.load_model(tmp_path / "tree.keras")
    assert isinstance(restored, TreeNetwork) and restored.groups == tree.groups
    np.testing.assert_array_equal(restored(clips).numpy(), tree(clips).numpy())


def test_bad_trees_are_refused_with_the_reason():
    with pytest.raises(ConfigError, match="every class 0 .. 3 exactly once"):
        build_tree([[0, 1], [1, 3]], frames=4, window=2)
    with pytest.raises(ConfigError, match="at least 2 children of at least 2 classes"):
        build_tree([[0, 1, 2]], frames=4, window=2)
    with pytest.raises(ConfigError, match="must leave windows for the child"):
        build_tree(GROUPS, frames=2, window=2)


@pytest.mark.slow
def test_the_emulated_tree_routes_and_classifies_as_the_keras_tree(tmp_path):
    """Noise off, each node's program reads out what its Keras model does, so the root's decoder
    routes each clip to the same child and that child names the same class."""
    tree, clips = _tree(), _clips(8)
    result = run_tree(tree, clips, compile_options={"input_white": 5})
    routes, classes = tree.hard_predict(clips)
    np.testing.assert_array_equal(result.routes, routes)
    np.testing.assert_array_equal(result.predictions, classes)
    np.testing.assert_array_equal(result.root_readouts, pixelrnn_tf.sensor_model(tree.root)(clips[:, :2]).numpy())
    # the reload: 400 + 4 x 25 kernel bits in 63 bytes, plus the CNN's and the forget gate's levels
    assert result.cost.reload_bytes == (65, 65, 65)
    frame = result.cost.seconds_per_frame
    per_clip = [2 * frame[0] + result.cost.reload_seconds[g + 1] + 2 * frame[g + 1] for g in routes]
    assert result.cost.seconds_per_clip == pytest.approx(np.mean(per_clip))
    assert result.cost.reload_seconds[1] == pytest.approx(1.3e-6 + 65 / 10e6)

    description = export.export_tree(tree, tmp_path / "tree", input_white=5)
    assert [r["folder"] for r in description["routing"]] == ["child_0", "child_1"]
    assert [r["classes"] for r in description["routing"]] == GROUPS
    assert export.read_tree(tmp_path / "tree")["root"] == {"folder": "root", "windows": 1, "table_bytes": 65}
    for node in ("root", "child_0", "child_1"):
        tables = export.load_in_pixel_tables(tmp_path / "tree" / node / "sensor")
        assert table_bytes(tables) == 65
    (tmp_path / "tree" / "child_1" / export.MANIFEST).unlink()
    with pytest.raises(export.ExportError, match="child_1 is missing"):
        export.read_tree(tmp_path / "tree")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep")
    with pytest.raises(export.ExportError, match="not a previous tree export"):
        export.export_tree(tree, tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("scales", [2, 4])
def test_grating_clips_show_their_class_scale_and_angle_in_the_spectrum(scales):
    """The strongest spatial frequency of every frame points along the class's orientation
    (o x 45 degrees) at the class's period, the oracle being the 2-D Fourier transform of a
    64x64 frame (frequency bins of 1/64)."""
    clips, labels = synthetic_orientations.generate(8 * scales, frames=2, seed=3, scales=scales)
    assert np.bincount(labels).tolist() == [2] * (4 * scales) and clips.min() >= -1 and clips.max() <= 1
    assert [c for group in synthetic_orientations.groups(scales) for c in group] == list(range(4 * scales))
    for clip, label in zip(clips, labels):
        spectrum = np.abs(np.fft.fftshift(np.fft.fft2(clip[0, :, :, 0] - clip[0].mean())))
        fy, fx = np.unravel_index(np.argmax(spectrum), spectrum.shape)
        angle = np.degrees(np.arctan2(fy - 32, fx - 32)) % 180
        expected = synthetic_orientations.orientation_degrees(label)
        assert min(abs(angle - expected), 180 - abs(angle - expected)) < 12, (label, angle)
        low, high = synthetic_orientations.periods(scales)[label // 4]
        period = 64 / np.hypot(fy - 32, fx - 32)
        assert 0.85 * low < period < 1.2 * high, (label, period)
    again, _ = synthetic_orientations.generate(8 * scales, frames=2, seed=3, scales=scales)
    np.testing.assert_array_equal(again, clips)
