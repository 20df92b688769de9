"""Bits-back coding for VAEs (`zoo.codec.bits_back`): latent buckets of equal prior mass,
the VAE's per-pixel probabilities against its own likelihood, bit-exact round trips on
tiny random-weight VAEs (binary, 17 levels with the digits models' logistic mixture and
with a categorical, convolutional networks, a first pop past the initial words, a decode
in a fresh process with other thread settings, every posterior flow and flow prior), the
linearized posterior of the flows and its chain of conditionals, the stream's rate against
the -ELBO, and refusals: other models, corrupted or mismatched streams."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from scipy import special

from tiny_models import random_images, tiny
from zoo.codec import bits_back
from zoo.codec.latent_buckets import CENTRES, EDGES, LATENT_BITS, NUM_BUCKETS, GaussianChain, posterior_masses
from zoo.models import VAE
from zoo.models import vae as vae_module

SHAPE = (8, 8, 1)
# name -> tiny VAE overrides: the binarized and the digits-like (17 levels) decoders.
VAES = {
    "binary": dict(num_levels=2),
    "mixture17": dict(num_levels=17, decoder="logistic_mixture", nr_logistic_mix=2),
    "categorical17": dict(num_levels=17, decoder="categorical"),
}


def tiny_vae(name, **overrides):
    return tiny("VAE", SHAPE, **{**VAES[name], **overrides})


def test_buckets_have_equal_prior_mass_and_hold_their_centres():
    assert NUM_BUCKETS == 2**LATENT_BITS
    assert EDGES[0] == -np.inf and EDGES[-1] == np.inf
    prior_mass = np.diff(special.ndtr(EDGES))
    np.testing.assert_allclose(prior_mass, 1.0 / NUM_BUCKETS, rtol=1e-9)
    assert np.all((EDGES[:-1] < CENTRES) & (CENTRES < EDGES[1:]))
    np.testing.assert_allclose(special.ndtr(CENTRES), (np.arange(NUM_BUCKETS) + 0.5) / NUM_BUCKETS, rtol=1e-9)


def test_posterior_masses_are_gaussian_bucket_probabilities_accurate_in_both_tails():
    mean = np.array([0.0, 0.3, -3.0, 3.0])
    std = np.array([1.0, 0.05, 0.3, 0.3])
    masses = posterior_masses(mean, std)
    assert masses.shape == (4, NUM_BUCKETS)
    np.testing.assert_allclose(masses.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(masses[0], 1.0 / NUM_BUCKETS, rtol=1e-9)  # the prior itself
    # In log space, log(Phi(b) - Phi(a)) = log Phi(b) + log(1 - exp(log Phi(a) - log Phi(b))),
    # mirrored above the mean: the reference keeps relative precision where Phi is ~0 or ~1.
    t = (EDGES - mean[:, None]) / std[:, None]
    a, b = t[:, :-1], t[:, 1:]
    with np.errstate(divide="ignore"):  # the branch np.where drops meets log(0)
        below = special.log_ndtr(b) + np.log1p(-np.exp(special.log_ndtr(a) - special.log_ndtr(b)))
        above = special.log_ndtr(-a) + np.log1p(-np.exp(special.log_ndtr(-b) - special.log_ndtr(-a)))
    reference = np.where(a > 0, above, below)
    # The top buckets lie about 20 sigma above a mean of -3: Phi there is 1 to double
    # precision, so Phi(b) - Phi(a) would be 0, yet their masses (~1e-90) are representable.
    naive = special.ndtr(b) - special.ndtr(a)
    assert np.all(naive[2, -5:] == 0) and np.all(masses[2, -5:] > 1e-120)
    finite = np.isfinite(reference) & (reference > -700)
    np.testing.assert_allclose(np.log(masses[finite]), reference[finite], rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="standard deviations > 0"):
        posterior_masses(np.zeros(2), np.array([1.0, 0.0]))


@pytest.mark.parametrize("name", sorted(VAES))
def test_pixel_log_probs_are_the_decoders_normalized_likelihood(name):
    model = tiny_vae(name)
    images = random_images(5, model.num_levels, SHAPE, seed=2)
    z = tf.random.stateless_normal([5, model.latent_dim], seed=[1, 2])
    log_p = model.pixel_log_probs(z)
    assert log_p.shape == (5, *SHAPE, model.num_levels)
    np.testing.assert_allclose(tf.reduce_logsumexp(log_p, -1), 0.0, atol=1e-5)
    picked = tf.gather(log_p, tf.cast(images, tf.int32)[..., None], batch_dims=4)[..., 0]
    with model.float32_network():
        expected = model._log_likelihood(tf.cast(images, tf.int32), z)
    np.testing.assert_allclose(tf.reduce_sum(picked, [1, 2, 3]), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name, count", [("binary", 7), ("binary", 1), ("mixture17", 5), ("categorical17", 3)])
def test_round_trip_is_bit_exact(name, count):
    model = tiny_vae(name)
    images = random_images(count, model.num_levels, SHAPE, seed=count)
    payload = bits_back.encode(model, images, None, 3)
    assert isinstance(payload, bytes) and len(payload) % 4 == 0
    decoded = bits_back.decode(model, payload, count, None, 3)
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, images)


def conv_vae():
    return tiny("VAE", (16, 16, 1), 2, latent_dim=4, network="conv", conv_filters=(4, 4, 4, 4, 4, 8),
                deconv_filters=(8, 4, 4, 4, 4, 4))


def test_round_trip_is_bit_exact_through_the_convolutional_networks():
    model = conv_vae()
    images = random_images(3, 2, (16, 16, 1), seed=4)
    np.testing.assert_array_equal(bits_back.decode(model, bits_back.encode(model, images), 3), images)


def test_a_first_pop_beyond_the_initial_words_still_round_trips():
    """120 latent dimensions pop about 120 x 12 bits from the first image, more than the
    32 x 32 initial bits: the stack pops past its end, and pushing back restores it."""
    model = tiny_vae("binary", latent_dim=120)
    images = random_images(3, 2, SHAPE, seed=7)
    payload = bits_back.encode(model, images)
    np.testing.assert_array_equal(bits_back.decode(model, payload, 3), images)


def test_a_fresh_process_with_other_thread_settings_decodes_the_same_images(tmp_path):
    model = conv_vae()
    images = random_images(4, 2, (16, 16, 1), seed=8)
    (tmp_path / "stream.bin").write_bytes(bits_back.encode(model, images))
    model.save_weights(tmp_path / "vae.weights.h5")
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_codec_bits_back import conv_vae
        from zoo.codec import bits_back
        model = conv_vae()
        model.load_weights({str(tmp_path / "vae.weights.h5")!r})
        payload = open({str(tmp_path / "stream.bin")!r}, "rb").read()
        np.save({str(tmp_path / "decoded.npy")!r}, bits_back.decode(model, payload, 4))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=600)
    np.testing.assert_array_equal(np.load(tmp_path / "decoded.npy"), images)


@pytest.mark.parametrize("name", ["binary", "mixture17"])
def test_stream_rate_is_the_elbo(name):
    """Bits per image after the initial words against E_q[-ELBO] (256 draws per image).

    The stream codes one posterior draw per image, so its rate scatters around the
    expected -ELBO with standard error sd / sqrt(n), sd the per-image spread of one
    draw's -ELBO: tolerance 4 standard errors, plus the ANS head flushed once at the end
    (at most two words). The buckets' discretization (4096 per dimension, 3 dimensions)
    moves the rate by far less (it evaluates the decoder at bucket centres, within 1e-3
    of the continuous draw where the posterior has mass). Without the bits back the rate
    would be higher by the posterior's entropy over buckets, about 3 x 12 bits."""
    model = tiny_vae(name)
    n = 300
    images = random_images(n, model.num_levels, SHAPE, seed=5)
    payload = bits_back.encode(model, images)
    rate = (8 * len(payload) - 32 * bits_back.INITIAL_WORDS) / n
    one_draw = bits_back.ideal_bits(model, images)
    expected = -model.elbo(images, num_samples=256).numpy().astype(np.float64) / np.log(2.0)
    spread = np.std(one_draw - expected)
    tolerance = 4 * spread / np.sqrt(n) + 64 / n
    assert spread > 0.1, "one draw's -ELBO scatters: the tolerance is not vacuous"
    assert abs(rate - expected.mean()) < tolerance, (rate, expected.mean(), tolerance)
    assert tolerance < 0.02 * expected.mean()


# Every posterior flow and every flow prior, each at least once.
FLOW_CASES = [("planar", "maf"), ("iaf", "realnvp"), ("householder", "normal"), ("sylvester_o", "normal"),
              ("sylvester_h", "maf"), ("sylvester_t", "realnvp"), ("gaussian", "maf")]


def test_the_flow_cases_cover_every_posterior_and_prior():
    assert {p for p, _ in FLOW_CASES} == set(vae_module.POSTERIORS)
    assert {q for _, q in FLOW_CASES} == set(vae_module.PRIORS)


def flow_vae(posterior, prior):
    return tiny("VAE", SHAPE, 2, posterior=posterior, prior=prior, num_flows=2, prior_flows=2,
                prior_hidden_units=(8,))


@pytest.mark.parametrize("posterior, prior", FLOW_CASES)
def test_flow_posteriors_and_flow_priors_round_trip(posterior, prior):
    model = flow_vae(posterior, prior)
    assert bits_back.supports(model) is None
    images = random_images(3, 2, SHAPE, seed=9)
    np.testing.assert_array_equal(bits_back.decode(model, bits_back.encode(model, images), 3), images)


def noise_map(model, image):
    """z0 -> u for one image, float64 in and out: the posterior flows, then the prior flow's inverse."""
    h = model._posterior(tf.constant(image[None], tf.int32), training=False)[0]

    def u_of(z0):
        z = tf.constant(z0[None, None], tf.float32)
        z = z if model.flow is None else model.flow.transform(z, h)[0]
        return model._prior_bijector().inverse(z[0]).numpy()[0].astype(np.float64)
    return u_of


@pytest.mark.parametrize("posterior, prior", [("gaussian", "normal"), ("planar", "normal"), ("iaf", "normal"),
                                              ("sylvester_o", "maf")])
def test_noise_posterior_is_the_flows_linearization_at_the_posterior_mean(posterior, prior):
    model = flow_vae(posterior, prior)
    images = random_images(2, 2, SHAPE, seed=3)
    mean_u, scale = (t.numpy().astype(np.float64) for t in model.noise_posterior(images))
    mean, log_var = (t.numpy() for t in model.posterior_parameters(images))
    std = np.exp(np.float32(0.5) * log_var)  # float32, as the graph computes it
    assert np.all(scale == np.tril(scale)) and np.all(np.diagonal(scale, axis1=1, axis2=2) > 0)
    if posterior == "gaussian" and prior == "normal":  # q(z | x) itself (TF's exp within an ulp of numpy's)
        np.testing.assert_array_equal(mean_u, mean)
        np.testing.assert_allclose(scale, np.stack([np.diag(s) for s in std]), rtol=1e-6, atol=0)
        return
    for b in range(2):
        u_of, step = noise_map(model, images[b]), 1e-2
        mean_b, std_b = mean[b].astype(np.float64), std[b].astype(np.float64)
        np.testing.assert_allclose(mean_u[b], u_of(mean_b), rtol=1e-5, atol=1e-5)
        jacobian = np.stack([(u_of(mean_b + step * e) - u_of(mean_b - step * e)) / (2 * step)
                             for e in np.eye(model.latent_dim)], axis=1)  # central differences
        covariance = jacobian @ np.diag(std_b ** 2) @ jacobian.T
        np.testing.assert_allclose(scale[b] @ scale[b].T, covariance, rtol=2e-2, atol=1e-4 * covariance.max())


def test_gaussian_chain_gives_each_dimensions_exact_conditional():
    rng = np.random.default_rng(0)
    d = 4
    a = rng.normal(size=(d, d))
    covariance = a @ a.T / d + 0.1 * np.eye(d)
    mean, scale = rng.normal(size=d), np.linalg.cholesky(covariance)
    buckets = rng.integers(NUM_BUCKETS // 4, 3 * NUM_BUCKETS // 4, size=d)
    chain = GaussianChain(mean, scale)
    for i in range(d):
        masses = chain.masses()
        c = CENTRES[buckets[:i]]
        # The conditional by the Schur complement of the covariance.
        gain = covariance[i, :i] @ np.linalg.inv(covariance[:i, :i]) if i else np.zeros(0)
        cond_mean = mean[i] + gain @ (c - mean[:i])
        cond_std = np.sqrt(covariance[i, i] - (gain @ covariance[:i, i] if i else 0.0))
        np.testing.assert_allclose(masses, posterior_masses(cond_mean, cond_std), rtol=1e-6, atol=1e-15)
        chain.take(buckets[i])
    std = np.array([0.3, 0.05, 1.0])
    diagonal = GaussianChain([0.1, -0.2, 2.0], np.diag(std))
    for i, bucket in enumerate([100, 2000, 4000]):
        np.testing.assert_array_equal(diagonal.masses(), posterior_masses([0.1, -0.2, 2.0][i], std[i]))
        diagonal.take(bucket)


def test_a_flow_vaes_stream_rate_is_its_linearized_posteriors_elbo():
    """The rate of a Sylvester posterior with a MAF prior against the -ELBO of the Gaussian
    that codes it (its mean and scale from `noise_posterior`), estimated with 64 draws per
    image, tolerance as in `test_stream_rate_is_the_elbo`; and against the model's own."""
    model = flow_vae("sylvester_o", "maf")
    n, draws = 200, 64
    images = random_images(n, 2, SHAPE, seed=11)
    payload = bits_back.encode(model, images)
    rate = (8 * len(payload) - 32 * bits_back.INITIAL_WORDS) / n
    mean, scale = model.noise_posterior(images)
    eps = tf.random.stateless_normal([draws, n, model.latent_dim], seed=[1, 2])
    u = mean[None] + tf.einsum("bij,sbj->sbi", scale, eps)
    log_q = vae_module.standard_normal_log_prob(eps, axis=-1) - tf.reduce_sum(
        tf.math.log(tf.linalg.diag_part(scale)), -1)[None]
    z = model.latent_from_noise(tf.reshape(u, [-1, model.latent_dim]))
    log_px = tf.reshape(model._log_likelihood(tf.tile(tf.cast(images, tf.int32), [draws, 1, 1, 1]), z), [draws, n])
    per_draw = -(log_px + vae_module.standard_normal_log_prob(u, axis=-1) - log_q).numpy() / np.log(2.0)
    expected, spread = per_draw.mean(0), per_draw.std(0).mean()
    tolerance = 4 * spread / np.sqrt(n) + 64 / n
    assert abs(rate - expected.mean()) < tolerance, (rate, expected.mean(), tolerance)
    model_elbo = -model.elbo(images, num_samples=64).numpy().mean() / np.log(2.0)
    assert abs(rate - model_elbo) < 0.05 * model_elbo, (rate, model_elbo)


def test_coding_refuses_unsupported_models():
    colours = tiny("VAE", (4, 4, 3), 17, decoder="logistic_mixture", nr_logistic_mix=2)
    assert "colours" in bits_back.supports(colours)
    with pytest.raises(ValueError, match="depend on each other"):
        bits_back.encode(colours, random_images(2, 17, (4, 4, 3)))
    vae = tiny_vae("binary")
    assert bits_back.supports(vae) is None
    with pytest.raises(ValueError, match="unconditional"):
        bits_back.encode(vae, random_images(2, 2, SHAPE), np.array([0, 1], np.int32))
    with pytest.raises(ValueError, match="batch_size"):
        bits_back.encode(vae, random_images(2, 2, SHAPE), None, 0)
    arm = tiny("ARM", SHAPE, 2)
    assert "VAE" in bits_back.supports(arm)
    with pytest.raises(ValueError, match="Cannot bits-back code"):
        bits_back.decode(arm, b"\0" * 256, 1)


def test_corrupted_truncated_or_mismatched_streams_are_refused():
    model = tiny_vae("binary")
    images = random_images(7, 2, SHAPE, seed=6)
    payload = bits_back.encode(model, images)
    words = len(payload) // 4
    for word in (0, bits_back.INITIAL_WORDS, (bits_back.INITIAL_WORDS + words) // 2, words - 1):
        for bit in (0, 17, 31):
            flipped = bytearray(payload)
            flipped[4 * word + bit // 8] ^= 1 << (bit % 8)
            with pytest.raises(ValueError):
                bits_back.decode(model, bytes(flipped), 7)
    for cut in (4, 3):
        with pytest.raises(ValueError):
            bits_back.decode(model, payload[:-cut], 7)
    for count in (6, 8):
        with pytest.raises(ValueError, match="initial words"):
            bits_back.decode(model, payload, count)
    other = tiny_vae("binary", seed=1)
    with pytest.raises(ValueError, match="other weights"):
        bits_back.decode(other, payload, 7)
