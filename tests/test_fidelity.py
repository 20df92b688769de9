"""One likelihood in every mode: mixed precision is a training-speed setting only.

For each family a tiny model with `mixed_precision="bfloat16"` and random weights, over
8-bit RGB images (so that 16-bit evaluation would be off by far more than the
tolerance), scores the same images eagerly, inside `tf.function`, through Keras'
`evaluate` and `predict` (compiled as `zoo.training` compiles), and through its
exported SavedModel, all within 1e-3 nats per image of each other and of a float32
copy (same config with `mixed_precision=None`, same weights). Sampling is float32 as
well: cached and naive samplers, and the float32 copy, draw identical images. Training
really runs the network in 16 bits, while the layers that output likelihood
parameters compute in float32."""

import functools
import math

import numpy as np
import pytest
import tensorflow as tf

import zoo
from tiny_models import TINY, call_nats, float32_copy, is_flow, random_images, tiny
from zoo import training

NATS = 1e-3  # per image
SHAPE, LEVELS = (4, 4, 3), 256
BATCH = 8


@pytest.fixture(scope="module")
def pairs():
    """family -> (bfloat16 model, its float32 copy, images), built once per family."""
    @functools.cache
    def pair(name):
        half = tiny(name, SHAPE, LEVELS, mixed_precision="bfloat16")
        assert half.mixed_precision == "bfloat16"
        return half, float32_copy(half), random_images(BATCH, LEVELS, SHAPE, seed=11)
    return pair


@pytest.fixture(scope="module", params=sorted(TINY))
def pair(request, pairs):
    return pairs(request.param)


def nats_from_bits(bpd, model):
    return -np.asarray(bpd, np.float64) * model.num_dims * math.log(2.0)


def test_eager_graph_keras_and_float32_copy_agree(pair):
    half, full, x = pair
    eager = half.log_prob(x).numpy()
    assert eager.dtype == np.float32 and np.all(np.isfinite(eager))
    assert np.ptp(eager) > 1.0, "degenerate weights: every image scored alike"
    graph = tf.function(lambda images: half.log_prob(images))(tf.constant(x)).numpy()
    np.testing.assert_allclose(graph, eager, rtol=0, atol=NATS)
    np.testing.assert_allclose(full.log_prob(x), eager, rtol=0, atol=NATS)
    # Keras, compiled the way `zoo.training.train` compiles (its `call`: a VAE's -ELBO).
    called = call_nats(half, x).numpy()
    np.testing.assert_allclose(call_nats(full, x), called, rtol=0, atol=NATS)
    half.compile(optimizer=training.make_optimizer(), jit_compile="auto")
    predicted = nats_from_bits(half.predict(x, batch_size=BATCH // 2, verbose=0), half)
    np.testing.assert_allclose(predicted, called, rtol=0, atol=NATS)
    loss = half.evaluate(x, batch_size=BATCH // 2, verbose=0, return_dict=True)["loss"]
    assert abs(nats_from_bits(loss, half) - called.mean()) < NATS
    record = training.evaluate(half, tf.data.Dataset.from_tensor_slices(x), batch_size=BATCH // 2)
    assert record["images"] == BATCH and abs(-record["nats"] - called.mean()) < NATS


def test_saved_model_serves_the_float32_numbers(pair, tmp_path):
    half, full, x = pair
    served = tf.saved_model.load(str(zoo.export(half, tmp_path / "saved")))
    out = served.signatures["log_prob"](images=tf.constant(x))["log_prob"].numpy()
    np.testing.assert_allclose(out, half.log_prob(x), rtol=0, atol=NATS)
    np.testing.assert_allclose(out, full.log_prob(x), rtol=0, atol=NATS)
    sample = served.signatures["sample"](n=tf.constant(4), temperature=tf.constant(1.0),
                                         seed=tf.constant(3, tf.int64))["images"].numpy()
    np.testing.assert_array_equal(sample, full.sample(4, seed=3))


def test_samplers_draw_the_float32_images(pair):
    half, full, _ = pair
    cached = half.sample(6, seed=3).numpy()
    assert len(np.unique(cached)) > 8, "degenerate samples would make the equality trivial"
    np.testing.assert_array_equal(cached, full.sample(6, seed=3))
    if not is_flow(type(half).__name__):  # autoregressive: the naive loop draws them too
        np.testing.assert_array_equal(half.sample(6, seed=3, method="naive"), cached)


def _likelihood_layers(model):
    """(a layer to record, "input" or "output": a tensor the 16-bit network computes),
    and the layers that output likelihood parameters, of each family."""
    name = type(model).__name__
    if name == "ARM":
        return (model.hidden[-1], "output"), [model.head]
    if name in ("PixelCNN", "GatedPixelCNN"):
        return (model.head[0], "output"), [model.head[1]]
    if name == "PixelCNNPlusPlus":
        return (model.u_in, "output"), [model.head]
    if name == "RealNVP":
        nets = [net for nets in model.checker_nets + model.channel_nets for net in nets]
        return (nets[0].conv_in, "output"), [net.conv_out for net in nets]
    if name == "Glow":  # its nets fold their weights into convolutions: read conv_out's input
        nets = [net for level in model.nets for net in level]
        return (nets[0].conv_out, "input"), [net.conv_out for net in nets] + list(model.split_nets)
    if name == "MAF":
        mades = model.mades + ([model.base_made] if model.base_made is not None else [])
        return (mades[0].hidden[0], "output"), [made.out for made in mades]
    if name == "VAE":
        return (model.encoder.dense[0], "output"), [model.decoder.head, model.q_mean, model.q_variance]
    raise KeyError(f"name the likelihood-parameter layers of {name} in test_fidelity.py")


def _record_dtypes(layer, seen):
    """Wraps `layer.call` to append the dtypes of its first input and first output."""
    call = layer.call

    def recording(*args, **kwargs):
        out = call(*args, **kwargs)
        seen.append((tf.nest.flatten(args)[0].dtype.name, tf.nest.flatten(out)[0].dtype.name))
        return out
    layer.call = recording


@pytest.mark.parametrize("name", sorted(TINY))
def test_training_runs_the_network_in_16_bits_and_the_likelihood_parameters_in_float32(pairs, name):
    """Last in this module: it wraps layers of the shared models and trains them."""
    half, full, x = pairs(name)
    x = x[:4]
    sixteen = [layer for layer in half._flatten_layers() if layer.compute_dtype == "bfloat16"]
    (hidden, side), heads = _likelihood_layers(half)
    index = 0 if side == "input" else 1
    hidden_seen, head_seen = [], [[] for _ in heads]
    _record_dtypes(hidden, hidden_seen)
    for layer, seen in zip(heads, head_seen):
        _record_dtypes(layer, seen)
    assert sixteen and all(layer.compute_dtype == "float32" for layer in heads)

    # Evaluation: the whole network in float32, then back to 16 bits (a fresh trace, so
    # the wrapped layers run: eager log_prob reuses the model's graph traced earlier).
    np.testing.assert_allclose(tf.function(half.log_prob)(x), full.log_prob(x), rtol=0, atol=NATS)
    assert hidden_seen and all(dtypes[index] == "float32" for dtypes in hidden_seen)
    assert all(layer.compute_dtype == "bfloat16" for layer in sixteen)
    # Training: the network in 16 bits, the likelihood parameters in float32.
    hidden_seen.clear()
    with tf.GradientTape() as tape:
        trained = half.log_prob(x, training=True)
    assert hidden_seen and all(dtypes[index] == "bfloat16" for dtypes in hidden_seen)
    assert all(seen and all(out == "float32" for _, out in seen) for seen in head_seen)
    grads = tape.gradient(trained, half.trainable_variables)
    assert all(g is None or np.all(np.isfinite(g)) for g in grads)
    assert sum(g is not None for g in grads) > 0.5 * len(grads)
    # The 16-bit pass is really rounded: off the float32 copy's by more than the tolerance
    # (the flows draw the same noise: both start from the same step).
    off = np.abs(trained.numpy() - full.log_prob(x, training=True).numpy())
    assert off.max() > NATS, f"training matched float32 to {off.max():.2e} nats: no 16-bit network"
