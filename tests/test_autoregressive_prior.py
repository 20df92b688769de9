"""The MADE MoG density (`zoo.distributions.made_mixture`) and the flows' autoregressive
prior (`FlowModel(prior="autoregressive")`): the density integrates to one, its sampler
draws from it, and a flow with it keeps the flow's exactness (the contract, bad-input
and export sweeps cover these models through `tiny_models.VARIANTS`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tiny_models import AUTOREGRESSIVE_PRIOR, random_images, tiny
from zoo.distributions import made_mixture_log_prob, made_mixture_sample
from zoo.layers import MADE
from zoo.models import MAF


def mixture_made(order="reversed", components=3, seed=0):
    """A 2-dimensional MADE MoG with random (non-trivial) output weights."""
    keras.utils.set_random_seed(seed)
    made = MADE(3 * components, (16, 16), input_order=order, direct=True, seed=seed)
    made.build((None, 2))
    rng = np.random.default_rng(seed)
    for w in made.weights:
        w.assign(rng.normal(0, 0.25, w.shape))
    return made


def grid(half_width=12.0, n=601):
    t = np.linspace(-half_width, half_width, n, dtype=np.float32)
    a, b = np.meshgrid(t, t, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], -1), (t[1] - t[0]) ** 2


@pytest.mark.parametrize("order", ["natural", "reversed"])
def test_density_integrates_to_one(order):
    made = mixture_made(order)
    z, cell = grid()
    density = np.exp(made_mixture_log_prob(made, z).numpy().astype(np.float64))
    assert density.sum() * cell == pytest.approx(1.0, abs=1e-3)


def test_sampler_draws_from_the_density_in_the_made_order():
    """Moments of 40000 draws against the same moments by quadrature (a sampler that
    filled the dimensions in the wrong order would draw another distribution)."""
    made = mixture_made("reversed", seed=1)
    z, cell = grid()
    p = np.exp(made_mixture_log_prob(made, z).numpy().astype(np.float64)) * cell
    draws = made_mixture_sample(made, 40000, 1.0, tf.constant([3, 4])).numpy()
    for f in (lambda v: v[:, 0], lambda v: v[:, 1], lambda v: v[:, 0] * v[:, 1],
              lambda v: v[:, 1] ** 2):
        exact, values = float(np.sum(p * f(z))), f(draws)
        assert abs(values.mean() - exact) < 4 * values.std() / np.sqrt(len(values)) + 1e-3


def test_temperature_zero_is_deterministic_given_the_components():
    made = mixture_made(components=1, seed=2)
    a = made_mixture_sample(made, 5, 0.0, tf.constant([1, 2])).numpy()
    b = made_mixture_sample(made, 5, 0.0, tf.constant([7, 8])).numpy()
    np.testing.assert_allclose(a, b, atol=1e-6)  # one component: the conditional means


@pytest.mark.parametrize("family", ["RealNVP", "Glow"])
def test_the_prior_is_the_flow_base_and_keeps_the_flow_exact(family):
    m = tiny(family, (8, 8, 1), 16, **AUTOREGRESSIVE_PRIOR)
    x = random_images(6, 16, (8, 8, 1))
    assert m.prior_made is not None and m.prior_made.size == 64
    np.testing.assert_array_equal(m.decode(m.encode(x)), x)
    z = m.encode(x)
    np.testing.assert_allclose(m.base_log_prob(z), made_mixture_log_prob(m.prior_made, tf.reshape(z, [6, 64])),
                               rtol=1e-6)
    before = m.log_prob(x).numpy()
    w = m.prior_made.out.kernel
    w.assign(w + 0.05)
    assert np.all(np.abs(m.log_prob(x).numpy() - before) > 1e-4), "the prior does not enter log_prob"
    s = m.sample(4, seed=5)
    assert s.shape == (4, 8, 8, 1) and s.dtype == tf.uint8
    np.testing.assert_array_equal(m.sample(4, seed=5), s)


def test_training_moves_the_prior_and_lowers_the_loss():
    m = tiny("RealNVP", (8, 8, 1), 16, **AUTOREGRESSIVE_PRIOR)
    x = random_images(32, 16, (8, 8, 1), seed=3)
    m.compile(optimizer=keras.optimizers.Adam(3e-3))
    start = [w.numpy().copy() for w in m.prior_made.trainable_weights]
    first = float(m.bits_per_dim(x).numpy().mean())
    m.fit(x, epochs=15, batch_size=16, verbose=0)
    assert float(m.bits_per_dim(x).numpy().mean()) < first
    assert any(np.abs(w.numpy() - s).max() > 1e-3 for w, s in zip(m.prior_made.trainable_weights, start))


def test_a_config_round_trip_keeps_the_prior():
    m = tiny("Glow", **AUTOREGRESSIVE_PRIOR)
    copy = type(m).from_config(m.get_config())
    assert copy.prior == "autoregressive" and copy.prior_hidden_units == [16] and copy.prior_components == 2


@pytest.mark.parametrize("kwargs,match", [
    ({"prior": "flow"}, "prior"), ({"prior": "autoregressive", "prior_components": 0}, "prior_components"),
    ({"prior": "autoregressive", "prior_hidden_units": []}, "prior_hidden_units"),
])
def test_bad_prior_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny("RealNVP", randomize=False, **kwargs)


def test_maf_names_its_base_instead():
    with pytest.raises(ValueError, match="base='mog'"):
        MAF((4, 4, 1), 3, num_layers=1, hidden_units=(8,), prior="autoregressive")
