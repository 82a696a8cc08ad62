"""Quantizers: forward values, surrogate gradients against their formulas, serialisation, TFLite."""

import numpy as np
import pytest

from pixelrnn_tf import quantizers
from pixelrnn_tf._keras import tf

X = np.linspace(-2.0, 2.0, 81).astype("float32")  # includes 0 exactly


def _value_and_grad(quantizer, x, training=None):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = quantizer(x, training=training) if training is not None else quantizer(x)
    return y.numpy(), tape.gradient(y, x).numpy()


@pytest.mark.parametrize("m", [1.0, 2.0, 5.0])
def test_tanh_sign_forward_and_surrogate_gradient(m):
    y, g = _value_and_grad(quantizers.TanhSign(m=m), X)
    np.testing.assert_array_equal(y, np.where(X >= 0, 1.0, -1.0))
    assert y[X == 0] == 1.0  # sign(0) = +1
    np.testing.assert_allclose(g, m * (1.0 - np.tanh(m * X) ** 2), rtol=1e-5, atol=1e-5)


def test_straight_through_sign_gradient_is_clipped_identity():
    y, g = _value_and_grad(quantizers.StraightThroughSign(clip_value=1.0), X)
    np.testing.assert_array_equal(y, np.where(X >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(g, (np.abs(X) <= 1.0).astype("float32"))


def test_sigmoid_step_is_heaviside_with_sigmoid_surrogate():
    m = 4.0
    y, g = _value_and_grad(quantizers.SigmoidStep(m=m), X)
    np.testing.assert_array_equal(y, (X >= 0).astype("float32"))
    s = 1.0 / (1.0 + np.exp(-m * X))
    np.testing.assert_allclose(g, m * s * (1 - s), rtol=1e-5, atol=1e-5)


def test_ste_ternary_dead_zone():
    y, g = _value_and_grad(quantizers.SteTernary(threshold=0.5, clip_value=1.0), X)
    expected = np.where(X > 0.5, 1.0, np.where(X < -0.5, -1.0, 0.0))
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(g, (np.abs(X) <= 1.0).astype("float32"))


def test_stochastic_sign_mean_matches_uniform_noise_probability():
    # E[sign(x + u)], u ~ U[-0.5, 0.5], is 2 * clip(x + 0.5, 0, 1) - 1.
    x = np.repeat(np.array([-0.6, -0.25, 0.0, 0.1, 0.3, 0.7], "float32")[:, None], 20000, axis=1)
    y = quantizers.StochasticSign()(tf.constant(x), training=True).numpy()
    expected = 2 * np.clip(x[:, 0] + 0.5, 0, 1) - 1
    np.testing.assert_allclose(y.mean(axis=1), expected, atol=0.03)
    # deterministic at inference
    np.testing.assert_array_equal(quantizers.StochasticSign()(tf.constant(x[:, :3])).numpy(), np.where(x[:, :3] >= 0, 1, -1))


def test_gumbel_binary_samples_with_softmax_probabilities():
    # logits (-x, x): P(+1) = sigmoid(2x), whatever the temperature.
    x = np.repeat(np.array([-1.0, -0.2, 0.0, 0.5], "float32")[:, None], 20000, axis=1)
    q = quantizers.GumbelSoftmaxQuantizer(levels=2, temperature=0.5)
    y = q(tf.constant(x), training=True).numpy()
    assert set(np.unique(y)) <= {-1.0, 1.0}
    p_plus = 1 / (1 + np.exp(-2 * x[:, 0]))
    np.testing.assert_allclose((y == 1).mean(axis=1), p_plus, atol=0.02)
    np.testing.assert_array_equal(q(tf.constant(X)).numpy(), np.where(X >= 0, 1.0, -1.0))


def test_gumbel_ternary_probabilities_and_gradient_flows():
    x0, delta = 0.3, 0.5
    x = np.full((40000,), x0, "float32")
    q = quantizers.GumbelSoftmaxQuantizer(levels=3, temperature=1.0, threshold=delta)
    y = q(tf.constant(x), training=True).numpy()
    logits = np.array([-x0 - delta, 0.0, x0 - delta])
    p = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose([(y == v).mean() for v in (-1, 0, 1)], p, atol=0.015)
    _, g = _value_and_grad(q, X, training=True)
    assert np.all(np.isfinite(g)) and np.any(g != 0)
    assert q.precision == 2 and quantizers.GumbelSoftmaxQuantizer(levels=2).precision == 1


def test_zero_point_shifts_the_sign_and_learns():
    latent = tf.Variable([[-0.3, 0.1, 0.25, 0.6]])
    zeta = tf.Variable(0.2)
    q = quantizers.TanhSign(m=2.0)
    with tf.GradientTape() as tape:
        w = quantizers.quantize_weight(latent, q, zeta)
        loss = tf.reduce_sum(w)
    np.testing.assert_array_equal(w.numpy(), [[-1, -1, 1, 1]])
    d = latent.numpy() - 0.2
    np.testing.assert_allclose(tape.gradient(loss, zeta).numpy(), -np.sum(2 * (1 - np.tanh(2 * d) ** 2)), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(quantizers.QUANTIZERS))
def test_quantizers_serialise_by_name_and_config(name):
    q = quantizers.get(name)
    restored = tf.keras.layers.deserialize(tf.keras.layers.serialize(q))
    assert type(restored) is type(q) and restored.get_config() == q.get_config()
    assert restored.precision in (1, 2)
    np.testing.assert_array_equal(restored(tf.constant(X)).numpy(), q(tf.constant(X)).numpy())


def test_unknown_quantizer_names_the_choices():
    with pytest.raises(ValueError, match="Unknown quantizer 'tanh_sgn'.*tanh_sign"):
        quantizers.get("tanh_sgn")


def _tflite_ops(model):
    from ai_edge_litert.interpreter import Interpreter

    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    return {op["op_name"] for op in Interpreter(model_content=flatbuffer)._get_ops_details()}


@pytest.mark.parametrize("name", ["tanh_sign", "ste_sign", "stochastic_sign", "ste_ternary", "gumbel_binary"])
def test_forward_sign_converts_to_tflite_without_sign_op(name):
    inputs = tf.keras.Input((8,))
    outputs = tf.keras.layers.Dense(3)(quantizers.get(name)(inputs))
    ops = _tflite_ops(tf.keras.Model(inputs, outputs))
    assert "SIGN" not in ops
    assert "SELECT_V2" in ops or "SELECT" in ops
