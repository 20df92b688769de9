import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tiny_models import tiny
from zoo.models import ARM


def tiny_arm(**kwargs):
    """The registry's tiny ARM (every weight perturbed) over [b, 3, 3, 2] images with 5 levels."""
    return tiny("ARM", (3, 3, 2), 5, **kwargs)


@pytest.mark.parametrize("first_dilation", [1, 2])
def test_logits_at_d_depend_only_on_inputs_before_d(first_dilation):
    model = tiny_arm(dilations=[first_dilation, 1, 4])
    # Random non-zero weights everywhere, so a zero gradient means no path at all.
    for v in model.trainable_variables:
        v.assign(tf.random.normal(v.shape, seed=3) * 0.5)
    x = tf.random.uniform([2, model.num_dims, 1], -1, 1, seed=2)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model.logits_from_inputs(x)
    jac = np.abs(tape.batch_jacobian(logits, x).numpy()).sum(axis=(0, 2, 4))  # [d, s]
    d = np.arange(model.num_dims)
    assert np.all(jac[d[:, None] <= d[None, :]] == 0), "a logit sees its own or a later input"
    reach = 1 + sum((model.kernel_size - 1) * r for r in model.dilations)  # receptive field
    assert np.all(jac[1:reach + 1, 0] > 0), "positions within the receptive field see the first input"
    assert np.all(jac[reach + 1:, 0] == 0), "positions beyond the receptive field do not"


def test_perturbing_later_pixels_leaves_earlier_conditionals_unchanged():
    model = tiny_arm()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 5, (4, 3, 3, 2)).astype(np.uint8)
    base = model.logits_from_inputs(model.scale(tf.cast(images, tf.int32))).numpy()
    d = 7
    changed = images.reshape(4, -1).copy()
    changed[:, d:] = rng.integers(0, 5, changed[:, d:].shape)
    out = model.logits_from_inputs(model.scale(tf.constant(changed.reshape(images.shape), tf.int32))).numpy()
    np.testing.assert_array_equal(base[:, : d + 1], out[:, : d + 1])


def test_probabilities_of_all_2x2_binary_images_sum_to_one():
    model = tiny("ARM", (2, 2, 1), 2, kernel_size=2, dilations=[1, 1])
    for v in model.trainable_variables:
        v.assign(tf.random.normal(v.shape, seed=5))
    images = np.array(list(itertools.product([0, 1], repeat=4)), np.uint8).reshape(16, 2, 2, 1)
    total = np.exp(model.log_prob(images).numpy().astype(np.float64)).sum()
    assert abs(total - 1.0) < 1e-5


def test_bits_per_dim_is_negative_log_prob_over_dims_ln2():
    model = tiny_arm()
    images = np.random.default_rng(1).integers(0, 5, (3, 3, 3, 2)).astype(np.uint8)
    np.testing.assert_allclose(model.bits_per_dim(images),
                               -model.log_prob(images) / (18 * np.log(2.0)), rtol=1e-6)


def test_sampling_is_seeded_in_range_and_temperature_zero_is_the_mode():
    model = tiny_arm()
    a = model.sample(6, temperature=1.0, seed=11).numpy()
    b = model.sample(6, temperature=1.0, seed=11).numpy()
    c = model.sample(6, temperature=1.0, seed=12).numpy()
    assert a.dtype == np.uint8 and a.shape == (6, 3, 3, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() < 5
    greedy = model.sample(2, temperature=0.0, seed=1).numpy()
    # At temperature 0 each position is the argmax of its conditional given the prefix.
    flat = greedy.reshape(2, -1)
    logits = model.logits_from_inputs(model.scale(tf.constant(greedy, tf.int32))).numpy()
    np.testing.assert_array_equal(flat, logits.argmax(-1))
    np.testing.assert_array_equal(greedy, model.sample(2, temperature=0.0, seed=99).numpy())


def test_keras_file_round_trip_in_safe_mode(tmp_path):
    model = tiny_arm(dropout=0.2)
    images = np.random.default_rng(2).integers(0, 5, (4, 3, 3, 2)).astype(np.uint8)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded, ARM) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.log_prob(images), model.log_prob(images))


def test_mixed_precision_keeps_likelihoods_float32():
    reference = tiny_arm()
    images = np.random.default_rng(3).integers(0, 5, (4, 3, 3, 2)).astype(np.uint8)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = tiny_arm()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    mixed.set_weights(reference.get_weights())
    assert mixed.hidden[0].compute_dtype == "bfloat16" and mixed.head.compute_dtype == "float32"
    log_prob = mixed.log_prob(images)
    assert log_prob.dtype == tf.float32
    np.testing.assert_allclose(log_prob, reference.log_prob(images), rtol=1e-5)  # evaluated in float32
    np.testing.assert_allclose(mixed.log_prob(images, training=True), log_prob, rtol=2e-2)


@pytest.mark.parametrize("image_shape", [(3, 3, 1), (3, 3, 3)])
@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
def test_cached_sampler_draws_exactly_the_naive_samples(image_shape, temperature):
    model = tiny("ARM", image_shape, 5, dilations=[2, 1, 3])
    for v in model.trainable_variables:
        v.assign(tf.random.normal(v.shape, seed=7))
    cached = model.sample(8, temperature=temperature, seed=21).numpy()
    naive = model.sample(8, temperature=temperature, seed=21, method="naive").numpy()
    np.testing.assert_array_equal(cached, naive)
    with pytest.raises(ValueError, match="method must be 'cached' or 'naive'"):
        model.sample(2, method="fast")
