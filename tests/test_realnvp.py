"""The RealNVP model: the whole flow's log-det, encode/decode, sampling, refusals,
saving, and the smoke preset through the driver (export: `test_export.py`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from jacobians import brute_force_log_det
from reproduce.__main__ import main
from tiny_models import random_images, tiny
from zoo.models import RealNVP

SHAPE = (4, 4, 2)


def small(levels=17, **kwargs):
    """The registry's tiny RealNVP over [b, 4, 4, 2] images with `levels` levels."""
    return tiny("RealNVP", SHAPE, levels, **kwargs)


def images(n=5, levels=17, shape=SHAPE, seed=0):
    return random_images(n, levels, shape, seed)


@pytest.fixture(scope="module")
def model():
    return small()


def test_whole_flow_log_det_equals_brute_force_jacobian(model):
    v = images(3).astype(np.float32) + np.random.default_rng(1).uniform(size=(3, *SHAPE)).astype(np.float32)
    expected = brute_force_log_det(lambda: model.bijector(training=False), v)
    fldj = model.bijector().forward_log_det_jacobian(v, event_ndims=3).numpy()
    np.testing.assert_allclose(fldj, expected, rtol=1e-4, atol=1e-4)
    z = model.bijector().forward(v)
    np.testing.assert_allclose(model.bijector().inverse_log_det_jacobian(z, event_ndims=3), -fldj,
                               rtol=1e-4, atol=1e-4)


def test_whole_flow_inverts_in_a_function_with_dynamic_batch(model):
    spec = tf.TensorSpec([None, *SHAPE], tf.float32)
    forward = tf.function(lambda v: model.bijector().forward(v), input_signature=[spec])
    inverse = tf.function(lambda z: model.bijector().inverse(z), input_signature=[spec])
    v = images(6).astype(np.float32) + 0.3
    np.testing.assert_allclose(inverse(forward(v)), v, rtol=1e-5, atol=1e-5)
    z = np.random.default_rng(2).normal(size=(2, *SHAPE)).astype(np.float32)
    np.testing.assert_allclose(forward(inverse(z)), z, rtol=1e-5, atol=1e-4)


def test_log_prob_is_the_dequantization_bound_averaged_over_fixed_draws(model):
    x = images(5)
    lp = model.log_prob(x).numpy()
    assert lp.shape == (5,) and lp.dtype == np.float32 and np.all(np.isfinite(lp))
    np.testing.assert_array_equal(model.log_prob(x).numpy(), lp)  # deterministic
    np.testing.assert_allclose(model.log_prob(x[:2]).numpy(), lp[:2], rtol=1e-6)  # batch-independent
    # By hand with the model's own draws: mean over draws of log N(z) + log-det.
    u = model._noise(5, training=False).numpy()
    v = (x[None].astype(np.float32) + u).reshape(-1, *SHAPE)
    z = model.bijector().forward(v).numpy()
    ldj = model.bijector().forward_log_det_jacobian(v, event_ndims=3).numpy()
    by_hand = (-0.5 * (z ** 2 + np.log(2 * np.pi)).sum(axis=(1, 2, 3)) + ldj).reshape(4, 5).mean(0)
    np.testing.assert_allclose(lp, by_hand, rtol=1e-5)
    np.testing.assert_allclose(model.bits_per_dim(x), -lp / (32 * np.log(2)), rtol=1e-6)


def test_training_pass_draws_fresh_noise_and_is_finite(model):
    x = images(8)
    a, b = model.log_prob(x, training=True).numpy(), model.log_prob(x, training=True).numpy()
    assert np.all(np.isfinite(a)) and not np.allclose(a, b)


@pytest.mark.parametrize("levels", [17, 256])
def test_decode_of_encode_is_the_identity_on_integer_images(levels):
    m = small(levels, num_blocks=1, norm="batch", flow_batch_norm=False)
    x = images(7, levels)
    x[0] = 0
    x[1] = levels - 1
    z = m.encode(x)
    assert z.shape == (7, *SHAPE) and z.dtype == tf.float32
    out = m.decode(z)
    assert out.dtype == tf.uint8
    np.testing.assert_array_equal(out.numpy(), x)


def test_sample_is_seeded_in_range_and_temperature_zero_is_one_image(model):
    s = model.sample(6, temperature=0.7, seed=4).numpy()
    assert s.shape == (6, *SHAPE) and s.dtype == np.uint8 and s.max() < 17
    np.testing.assert_array_equal(model.sample(6, temperature=0.7, seed=4), s)
    assert not np.array_equal(model.sample(6, temperature=0.7, seed=5), s)
    cold = model.sample(3, temperature=0.0, seed=1).numpy()
    np.testing.assert_array_equal(cold, np.broadcast_to(model.decode(np.zeros((1, *SHAPE), np.float32)), cold.shape))


@pytest.mark.parametrize("method,arg,match", [
    ("encode", np.zeros((2, *SHAPE), np.float32), "integer images"),
    ("encode", np.full((2, *SHAPE), 17, np.uint8), r"\[0, 17\)"),
    ("encode", np.zeros((2, 4, 4, 1), np.uint8), r"shape \[batch, 4, 4, 2\]"),
    ("decode", np.zeros((2, *SHAPE), np.int32), "float latents"),
    ("decode", np.zeros((2, 4, 4, 1), np.float32), r"shape \[batch, 4, 4, 2\]"),
    ("decode", np.zeros(SHAPE, np.float32), r"shape \[batch, 4, 4, 2\]"),
    ("decode", np.full((1, *SHAPE), np.nan, np.float32), "finite"),
    ("log_prob", np.zeros((2, *SHAPE), np.float64), "integer images"),
])
def test_bad_inputs_are_refused(model, method, arg, match):
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(arg)


@pytest.mark.parametrize("kwargs,match", [
    ({"num_scales": 3}, "at least 2x2"),
    ({"num_scales": 4}, "divisible"),
    ({"num_scales": 0}, "num_scales"),
    ({"norm": "weight"}, "norm"),
    ({"mixed_precision": "int8"}, "mixed_precision"),
    ({"alpha": 0.7}, "alpha"),
    ({"eval_draws": 0}, "eval_draws"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RealNVP(SHAPE, 17, **kwargs)


def test_keras_file_round_trip_in_safe_mode(model, tmp_path):
    path = tmp_path / "realnvp.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, RealNVP) and loaded.get_config() == model.get_config()
    x = images(4)
    np.testing.assert_array_equal(loaded.log_prob(x), model.log_prob(x))
    np.testing.assert_array_equal(loaded.encode(x), model.encode(x))


def test_bfloat16_networks_keep_the_flow_float32_and_exact():
    m = small(num_scales=1, num_blocks=1, norm="batch", mixed_precision="bfloat16")
    x = images(4)
    assert m.log_prob(x).dtype == tf.float32 and m.encode(x).dtype == tf.float32
    np.testing.assert_array_equal(m.decode(m.encode(x)), x)


def test_smoke_preset_through_the_driver_writes_record_and_temperature_sweep(tmp_path):
    record = main(["realnvp", "--preset", "smoke", "--out", str(tmp_path), "--epochs", "1"])
    assert record["dataset"] == "digits" and record["model"] == "RealNVP"
    assert np.isfinite(record["test_bits_per_dim"]) and record["published"]["bits_per_dim"] == 3.80
    for png in ["realnvp-smoke-digits.png", "realnvp-smoke-digits-curve.png",
                "realnvp-smoke-digits-temperatures.png"]:
        assert (tmp_path / "figures" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
