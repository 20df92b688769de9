"""The Glow model: the whole 2-level flow's log-det, inversion, actnorm init by the
training's explicit step (one device and two replicas), n_bits, sampling, interpolation, refusals, saving,
and the smoke preset through the driver (export: `test_export.py`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from distributed import isolated_mirrored
from jacobians import brute_force_log_det
from reproduce.__main__ import main
from tiny_models import random_images, randomized, tiny
from zoo import bijectors as zb
from zoo import training
from zoo.models import Glow

SHAPE = (4, 4, 2)


def images(n=5, levels=17, shape=SHAPE, seed=0):
    return random_images(n, levels, shape, seed)


def small(**kwargs):
    """The registry's tiny Glow over [b, 4, 4, 2] images with 17 levels, two steps per
    level: actnorms initialized on data, every weight moved off its init."""
    return tiny("Glow", SHAPE, 17, **{"depth": 2, **kwargs})


@pytest.fixture(scope="module")
def model():
    return small()


@pytest.mark.parametrize("kwargs", [{}, {"coupling": "additive", "permutation": "conv",
                                         "learn_top": False}, {"net_actnorm": True},
                                    {"preprocess": "logit", "alpha": 0.1}])
def test_whole_two_level_flow_log_det_equals_brute_force_jacobian(kwargs):
    m = small(**kwargs)
    v = images(3).astype(np.float32) + np.random.default_rng(1).uniform(size=(3, *SHAPE)).astype(np.float32)
    expected = brute_force_log_det(lambda: m.bijector(), v)
    fldj = m.bijector().forward_log_det_jacobian(v, event_ndims=3).numpy()
    np.testing.assert_allclose(fldj, expected, rtol=1e-4, atol=1e-4)
    z = m.bijector().forward(v)
    np.testing.assert_allclose(m.bijector().inverse_log_det_jacobian(z, event_ndims=3), -fldj,
                               rtol=1e-4, atol=1e-4)


def test_whole_flow_inverts_in_a_function_with_dynamic_batch(model):
    spec = tf.TensorSpec([None, *SHAPE], tf.float32)
    forward = tf.function(lambda v: model.bijector().forward(v), input_signature=[spec])
    inverse = tf.function(lambda z: model.bijector().inverse(z), input_signature=[spec])
    v = images(6).astype(np.float32) + 0.3
    np.testing.assert_allclose(inverse(forward(v)), v, rtol=1e-4, atol=1e-4)
    z = np.random.default_rng(2).normal(size=(2, *SHAPE)).astype(np.float32)
    np.testing.assert_allclose(forward(inverse(z)), z, rtol=1e-4, atol=1e-4)


def test_log_prob_is_the_dequantization_bound_with_a_standard_normal_on_eps(model):
    x = images(5)
    lp = model.log_prob(x).numpy()
    assert lp.shape == (5,) and np.all(np.isfinite(lp))
    u = model._noise(5, training=False).numpy()
    v = (x[None].astype(np.float32) + u).reshape(-1, *SHAPE)
    z = model.bijector().forward(v).numpy()
    ldj = model.bijector().forward_log_det_jacobian(v, event_ndims=3).numpy()
    by_hand = (-0.5 * (z ** 2 + np.log(2 * np.pi)).sum(axis=(1, 2, 3)) + ldj).reshape(4, 5).mean(0)
    np.testing.assert_allclose(lp, by_hand, rtol=1e-5)
    # At init (zero nets, identity actnorms and priors, rotations): the scaling's -D log L
    # and log sigmoid(2) for each of the 16 + 8 dimensions the two couplings scale.
    fresh = Glow(SHAPE, 17, num_scales=2, depth=1, filters=4, seed=0)
    ldj0 = fresh.bijector().forward_log_det_jacobian(v[:2], event_ndims=3).numpy()
    np.testing.assert_allclose(ldj0, -32 * np.log(17.0) - 24 * np.log1p(np.exp(-2.0)), rtol=1e-5)


def initialize_then_fit(devices=None):
    """The first actnorm's (bias, log_scale) after `zoo.training.initialize` (the step
    `train` runs before `fit`) on 16 images whose halves differ (replica 0 gets dark
    images, replica 1 bright), then one `fit` step at learning rate 0."""
    x = np.concatenate([images(8, levels=6), images(8, levels=6, seed=1) + 11]).astype(np.uint8)
    strategy = isolated_mirrored(devices) if devices else tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    with strategy.scope():
        m = Glow(SHAPE, 17, num_scales=1, depth=1, filters=4, net_actnorm=True,
                 seed=0).build_for_images()
        m.compile(optimizer=keras.optimizers.SGD(0.0))
    batches = tf.data.Dataset.from_tensor_slices(x).batch(16)
    assert not m.actnorm_initialized()
    training.initialize(m, strategy, strategy.experimental_distribute_dataset(batches))
    assert m.actnorm_initialized()
    m.fit(batches, epochs=1, verbose=0, shuffle=False)
    layers = [m.actnorms[0][0], *m.nets[0][0].norms]  # the flow's and its net's actnorms
    return [w.numpy() for layer in layers for w in (layer.bias, layer.log_scale)], m


def test_the_initialization_step_sets_actnorm_alike_on_one_device_and_two_replicas(two_cpus):
    params1, m = initialize_then_fit()
    params2, _ = initialize_then_fit(two_cpus)
    assert np.all(np.abs(params1[1]) > 0.3)
    assert all(layer.initialized.numpy() == 1 for layer in m.nets[0][0].norms)
    # Same global batch and the same fixed dequantization draw: the replicas' all-reduced
    # statistics are the whole batch's.
    for a, b in zip(params1, params2):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    before = [w.numpy() for w in m.actnorms[0][0].weights]  # a second initialization is a no-op
    m.initialize(images(16, seed=5))
    for a, w in zip(before, m.actnorms[0][0].weights):
        np.testing.assert_array_equal(a, w.numpy())


def test_initialization_standardizes_every_actnorm_output(monkeypatch):
    """After `initialize(x)`, on the same pass through the model's own bijector (its
    fixed dequantization draw), every actnorm's output has zero mean and unit std per
    channel: each was set from its own input, level by level."""
    m = Glow(SHAPE, 17, num_scales=2, depth=2, filters=4, learn_top=False, seed=0).build_for_images()
    x = images(32)
    m.initialize(x)
    outputs, forward = [], zb.ActNorm._forward
    monkeypatch.setattr(zb.ActNorm, "_forward", lambda self, h: outputs.append(forward(self, h)) or outputs[-1])
    m.bijector().forward(tf.cast(x, tf.float32) + m._noise(32, training=False)[0])
    assert len(outputs) == m.num_scales * m.depth
    for y in outputs:
        mean, variance = tf.nn.moments(y, axes=[0, 1, 2])
        np.testing.assert_allclose(mean, 0.0, atol=1e-4)
        np.testing.assert_allclose(variance, 1.0, atol=1e-3)


def test_n_bits_models_the_reduced_image():
    m = randomized(Glow(SHAPE, 256, num_scales=1, depth=1, filters=4, n_bits=5, seed=0))
    x = images(4, levels=256)
    low = (x // 8) * 8
    np.testing.assert_allclose(m.log_prob(x), m.log_prob(low + 7), rtol=1e-6)
    np.testing.assert_array_equal(m.decode(m.encode(x)), low)
    s = m.sample(3, temperature=0.7, seed=1).numpy()
    assert np.all(s % 8 == 0)


@pytest.mark.parametrize("levels,preprocess", [(17, "scale"), (256, "scale"), (256, "logit")])
def test_decode_of_encode_is_the_identity_on_integer_images(levels, preprocess):
    m = randomized(Glow(SHAPE, levels, num_scales=2, depth=2, filters=4,
                        preprocess=preprocess))
    x = images(7, levels)
    x[0], x[1] = 0, levels - 1
    z = m.encode(x)
    assert z.shape == (7, *SHAPE) and z.dtype == tf.float32
    np.testing.assert_array_equal(m.decode(z).numpy(), x)


def test_sample_is_seeded_and_temperature_zero_decodes_the_prior_means(model):
    s = model.sample(6, temperature=0.7, seed=4).numpy()
    assert s.shape == (6, *SHAPE) and s.dtype == np.uint8 and s.max() < 17
    np.testing.assert_array_equal(model.sample(6, temperature=0.7, seed=4), s)
    assert not np.array_equal(model.sample(6, temperature=0.7, seed=5), s)
    cold = model.sample(2, temperature=0.0, seed=1).numpy()
    np.testing.assert_array_equal(cold, model.decode(np.zeros((2, *SHAPE), np.float32)))


def test_interpolation_starts_and_ends_at_the_two_images(model):
    a, b = images(2, seed=9)
    path = model.interpolate(a, b, num=5).numpy()
    assert path.shape == (5, *SHAPE) and path.dtype == np.uint8
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    with pytest.raises(ValueError, match="num must be an integer >= 2"):
        model.interpolate(a, b, num=1)


@pytest.mark.parametrize("method,arg,match", [
    ("encode", np.zeros((2, *SHAPE), np.float32), "integer images"),
    ("encode", np.full((2, *SHAPE), 17, np.uint8), r"\[0, 17\)"),
    ("log_prob", np.zeros((2, 4, 4, 1), np.uint8), r"shape \[batch, 4, 4, 2\]"),
    ("decode", np.zeros((2, *SHAPE), np.int32), "float latents"),
    ("decode", np.full((1, *SHAPE), np.inf, np.float32), "finite"),
    ("initialize", np.zeros((2, *SHAPE), np.float64), "integer images"),
])
def test_bad_inputs_are_refused(model, method, arg, match):
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(arg)


@pytest.mark.parametrize("kwargs,match", [
    ({"num_scales": 3}, r"divisible by 2\^num_scales"),
    ({"num_scales": 0}, "num_scales"),
    ({"depth": 0}, "depth"),
    ({"coupling": "spline"}, "coupling"),
    ({"permutation": "shuffle"}, "permutation"),
    ({"mixed_precision": "int8"}, "mixed_precision"),
    ({"n_bits": 5}, "power of two"),
    ({"eval_draws": 0}, "eval_draws"),
    ({"preprocess": "dequantize"}, "preprocess must be 'scale' or 'logit'"),
    ({"preprocess": "logit", "alpha": 0.5}, r"alpha must be a number in \[0, 0.5\)"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Glow(SHAPE, 17, **{"num_scales": 1, **kwargs})


def test_keras_file_round_trip_in_safe_mode(model, tmp_path):
    path = tmp_path / "glow.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, Glow) and loaded.get_config() == model.get_config()
    assert loaded.actnorm_initialized()
    x = images(4)
    np.testing.assert_array_equal(loaded.log_prob(x), model.log_prob(x))
    np.testing.assert_array_equal(loaded.encode(x), model.encode(x))


def test_smoke_preset_through_the_driver_writes_record_and_figures(tmp_path):
    record = main(["glow", "--preset", "smoke", "--out", str(tmp_path), "--epochs", "1"])
    assert record["dataset"] == "digits" and record["model"] == "Glow"
    assert np.isfinite(record["test_bits_per_dim"])
    for png in ["glow-smoke-digits.png", "glow-smoke-digits-curve.png",
                "glow-smoke-digits-temperatures.png", "glow-smoke-digits-interpolation.png"]:
        assert (tmp_path / "figures" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
