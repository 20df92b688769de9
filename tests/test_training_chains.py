"""`training_chains`: a training batch split into independent chains of one graph is the
same loss and the same gradients as the whole batch, per image, for every family whose
training forward keeps a batch's images apart; the others refuse it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tiny_models import CASES, args_for, random_images, tiny, tiny_case
from zoo.models import ARM, MODELS

# Families whose tiny training forward couples the batch: batch norm, the VAE's step counter.
REFUSING = {"RealNVP", "MAF", "VAE"}
CHAINABLE = [case for case, (name, _) in CASES.items() if name not in REFUSING]
UNCOUPLED = {"RealNVP": dict(norm="none", flow_batch_norm=False), "MAF": dict(batch_norm=False)}


def piecewise(model, args, n):
    """The training bits/dim of each of `n` equal pieces in turn, with the chains off."""
    model.training_chains = 1
    try:
        pieces = zip(*(np.split(np.asarray(a), n) for a in args))
        return tf.concat([model(piece if len(piece) > 1 else piece[0], training=True)
                          for piece in pieces], axis=0)
    finally:
        model.training_chains = n


def loss_and_gradients(model, forward):
    """Bits/dim per image `[batch]` and the gradients of their mean."""
    with tf.GradientTape() as tape:
        bits = forward()
        loss = tf.reduce_mean(bits)
    return bits, tape.gradient(loss, model.trainable_weights)


def check_same_as_pieces(model, n=2, batch=6):
    args = args_for(model, random_images(batch))
    inputs = args if len(args) > 1 else args[0]
    start = [w.numpy() for w in model.non_trainable_weights]  # a flow's noise counter
    chained, chained_grads = loss_and_gradients(model, lambda: model(inputs, training=True))
    for w, value in zip(model.non_trainable_weights, start):
        w.assign(value)
    alone, alone_grads = loss_and_gradients(model, lambda: piecewise(model, args, n))
    np.testing.assert_allclose(chained.numpy(), alone.numpy(), rtol=1e-5)
    for a, b in zip(chained_grads, alone_grads):
        if a is not None or b is not None:
            np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy(),
                                       rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("case", CHAINABLE)
def test_chains_give_the_pieces_losses_and_gradients(case):
    check_same_as_pieces(tiny_case(case, training_chains=2))


@pytest.mark.parametrize("name", sorted(UNCOUPLED))
def test_batch_norm_free_variants_chain(name):
    check_same_as_pieces(tiny(name, **UNCOUPLED[name], training_chains=3), n=3)


def test_chains_do_not_change_the_whole_batch_loss_or_fit():
    """A deterministic model: chained and unchained `fit` steps (graph mode) land on the
    same weights."""
    batch = random_images(8)
    results = []
    for chains in (1, 2):
        keras.utils.set_random_seed(0)
        model = ARM(image_shape=(4, 4, 1), num_levels=3, filters=8, kernel_size=3, dilations=[1, 2],
                    residual=True, position_embedding=True, training_chains=chains).build_for_images()
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(8), epochs=2, verbose=0,
                            shuffle=False)
        results.append((history.history["loss"], model.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", sorted(REFUSING))
def test_batch_coupled_models_refuse_chains(name):
    with pytest.raises(ValueError, match="training_chains must be 1"):
        tiny(name, training_chains=2)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_bad_chain_counts_are_refused(bad):
    with pytest.raises(ValueError, match="training_chains must be an int >= 1"):
        ARM(image_shape=(4, 4, 1), num_levels=3, training_chains=bad)


def test_a_batch_that_does_not_split_evenly_is_refused():
    model = tiny("ARM", training_chains=4)
    with pytest.raises(ValueError, match="multiple of 4"):
        model(random_images(6), training=True)
    graph = tf.function(lambda x: model(x, training=True),
                        input_signature=[tf.TensorSpec([None, 4, 4, 1], tf.uint8)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiple of 4"):
        graph(random_images(6))
    assert graph(random_images(8)).shape == (8,)


def test_evaluation_ignores_chains_and_config_round_trips():
    model = tiny("Glow", training_chains=2)
    images = random_images(3)  # odd: evaluation never splits
    np.testing.assert_allclose(model(images).numpy(), model.bits_per_dim(images).numpy(), rtol=1e-6)
    again = MODELS["Glow"].from_config(model.get_config())
    assert again.training_chains == 2
