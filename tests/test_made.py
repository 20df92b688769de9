"""MaskedDense and MADE: the autoregressive property by gradients for every ordering,
with and without the direct connection and a context, the masks' degrees, the
sequential generator, and configs that rebuild the same masks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import MADE, MaskedDense
from zoo.layers.made import input_degrees

D = 6
ORDERS = {"natural": "natural", "reversed": "reversed", "random": "random",
          "given": [3, 0, 5, 1, 4, 2]}


def made(order="natural", direct=False, context_size=None, num_params=2, hidden=(13, 11), seed=7):
    """A built MADE with tanh units (no dead ReLUs hide a connection) and random weights
    (the output layer included)."""
    layer = MADE(num_params, hidden, input_order=order, direct=direct, context_size=context_size,
                 activation="tanh", output_initializer="glorot_uniform", seed=seed)
    layer(tf.zeros([1, D]), **({"context": tf.zeros([1, context_size])} if context_size else {}))
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.normal(0, 0.5, w.shape))
    return layer


def jacobian(layer, x, context=None):
    """d out[b, d, p] / d x[b, i] -> `[b, D, P, D]`."""
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, context=context)
    return tape.batch_jacobian(out, x).numpy()


@pytest.mark.parametrize("direct", [False, True])
@pytest.mark.parametrize("order", sorted(ORDERS))
def test_output_depends_exactly_on_the_inputs_before_it_in_the_order(order, direct):
    layer = made(ORDERS[order], direct=direct)
    x = np.random.default_rng(1).normal(size=(3, D)).astype(np.float32)
    degrees = layer.degrees
    allowed = degrees[None, :] < degrees[:, None]  # [output d, input i]
    nonzero = np.abs(jacobian(layer, x)).max(axis=(0, 2)) > 1e-7  # [d, i]
    np.testing.assert_array_equal(nonzero, allowed)
    if order == "given":
        np.testing.assert_array_equal(degrees, ORDERS["given"])


@pytest.mark.parametrize("order", ["natural", "random"])
def test_context_conditions_every_output_and_keeps_the_property(order):
    layer = made(order, direct=True, context_size=3)
    x = np.random.default_rng(2).normal(size=(4, D)).astype(np.float32)
    context = tf.constant(np.random.default_rng(3).normal(size=(4, 3)), tf.float32)
    allowed = layer.degrees[None, :] < layer.degrees[:, None]
    nonzero = np.abs(jacobian(layer, x, context)).max(axis=(0, 2)) > 1e-7
    np.testing.assert_array_equal(nonzero, allowed)
    c = tf.Variable(context)
    with tf.GradientTape() as tape:
        out = layer(tf.constant(x), context=c)
    by_context = np.abs(tape.batch_jacobian(out, c).numpy()).max(axis=(0, 2, 3))  # per output d
    assert np.all(by_context > 1e-7)  # the first dimension in the order too


def test_context_is_required_exactly_when_configured():
    with pytest.raises(ValueError, match="context"):
        made(context_size=2)(tf.zeros([1, D]))
    with pytest.raises(ValueError, match="context"):
        made()(tf.zeros([1, D]), context=tf.zeros([1, 2]))


@pytest.mark.parametrize("kind", ["equal", "random"])
def test_masks_follow_the_degrees(kind):
    layer = MADE(3, (10, 8), input_order="random", hidden_degrees=kind, seed=4)
    layer.build((None, D))
    previous = layer.degrees
    for hidden, degrees in zip(layer.hidden, layer.unit_degrees):
        assert degrees.min() >= previous.min() and degrees.max() <= D - 2
        np.testing.assert_array_equal(hidden.mask, degrees[None, :] >= previous[:, None])
        previous = degrees
    out = np.repeat(layer.degrees, 3)
    np.testing.assert_array_equal(layer.out.mask, out[None, :] > previous[:, None])
    y = layer(tf.zeros([2, D]))
    assert y.shape == (2, D, 3) and y.dtype == tf.float32


def test_orders():
    np.testing.assert_array_equal(input_degrees(4, "reversed"), [3, 2, 1, 0])
    a, b = input_degrees(9, "random", 1), input_degrees(9, "random", 1)
    np.testing.assert_array_equal(a, b)
    assert sorted(a) == list(range(9)) and not np.array_equal(a, np.arange(9))
    with pytest.raises(ValueError, match="permutation"):
        input_degrees(3, [0, 0, 1])
    with pytest.raises(ValueError, match="input_order"):
        MADE(2, input_order="sideways")


def test_config_rebuilds_the_same_masks_and_outputs():
    layer = made("random", direct=True, context_size=2, seed=None)  # seed drawn and kept
    config = layer.get_config()
    assert config["seed"] is not None
    clone = MADE.from_config(config)
    clone(tf.zeros([1, D]), context=tf.zeros([1, 2]))
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone.degrees, layer.degrees)
    x = tf.random.stateless_normal([3, D], seed=[1, 2])
    context = tf.random.stateless_normal([3, 2], seed=[3, 4])
    np.testing.assert_allclose(clone(x, context=context), layer(x, context=context), rtol=1e-6)
    assert MADE.from_config(config).get_config() == config


@pytest.mark.parametrize("direct,context_size", [(False, None), (True, 3)])
def test_sequential_generation_is_a_fixed_point_of_the_network(direct, context_size):
    """x[:, d] = step(d, made(x)[:, d]) for every d: the loop saw exactly x_<d."""
    layer = made("random", direct=direct, context_size=context_size)
    context = None if context_size is None else tf.random.stateless_normal([5, 3], seed=[0, 1])
    noise = tf.random.stateless_normal([5, D], seed=[2, 3])

    def step(d, params):
        return tf.gather(noise, d, axis=1) * tf.exp(0.3 * tf.tanh(params[:, 1])) + params[:, 0]
    x = tf.function(lambda: layer.sequential(5, step, context))()
    params = layer(x, context=context)
    expected = noise * tf.exp(0.3 * tf.tanh(params[..., 1])) + params[..., 0]
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


def test_masked_dense_masked_weights_get_no_gradient_and_round_trip():
    mask = np.array([[1, 0, 1], [0, 1, 1]])
    layer = MaskedDense(3, mask, kernel_initializer="ones")
    x = tf.constant([[2.0, 3.0]])
    np.testing.assert_allclose(layer(x), [[2.0, 3.0, 5.0]])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x))
    np.testing.assert_array_equal(tape.gradient(y, layer.kernel).numpy() != 0, mask.astype(bool))
    clone = MaskedDense.from_config(layer.get_config())
    np.testing.assert_array_equal(clone.mask, mask)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, MaskedDense) and restored.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="0/1"):
        MaskedDense(3, np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="input features"):
        MaskedDense(3, mask)(tf.zeros([1, 4]))


def test_dropout_only_while_training_and_keeps_the_property():
    layer = MADE(2, (32, 32), input_order="random", dropout=0.5, activation="tanh", seed=3)
    x = tf.random.stateless_normal([4, D], seed=[5, 6])
    layer(x)
    np.testing.assert_array_equal(layer(x), layer(x))  # not training: no dropout
    a, b = layer(x, training=True), layer(x, training=True)
    assert not np.allclose(a, b)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=True)
    nonzero = np.abs(tape.batch_jacobian(out, x).numpy()).max(axis=(0, 2)) > 0
    assert not np.any(nonzero & ~(layer.degrees[None, :] < layer.degrees[:, None]))
    with pytest.raises(ValueError, match="dropout"):
        MADE(2, dropout=1.0)


def test_outputs_are_float32_when_the_hidden_layers_compute_in_bfloat16():
    layer = MADE(2, (8, 8), context_size=2, direct=True, dtype="mixed_bfloat16", seed=1)
    y = layer(tf.ones([3, D]), context=tf.ones([3, 2]))
    assert layer.hidden[0].compute_dtype == "bfloat16" and y.dtype == tf.float32
