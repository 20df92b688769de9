"""Bits-back coding for VAEs (`zoo.codec.bits_back`): latent buckets of equal prior mass,
the VAE's per-pixel probabilities against its own likelihood, bit-exact round trips on
tiny random-weight VAEs (binary, 17 levels with the digits models' logistic mixture and
with a categorical, convolutional networks, a first pop past the initial words, a decode
in a fresh process with other thread settings), the stream's rate against the -ELBO, and
refusals: flow posteriors and priors, other models, corrupted or mismatched streams."""

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
from zoo.codec.latent_buckets import CENTRES, EDGES, LATENT_BITS, NUM_BUCKETS, posterior_masses
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


FLOW_CASES = [*[(kind, "normal") for kind in vae_module.POSTERIORS if kind != "gaussian"],
              ("gaussian", "realnvp"), ("gaussian", "maf")]


@pytest.mark.parametrize("posterior, prior", FLOW_CASES)
def test_flow_posteriors_and_flow_priors_are_refused_with_one_line(posterior, prior):
    model = VAE(image_shape=(4, 4, 1), num_levels=2, latent_dim=2, posterior=posterior, prior=prior,
                num_flows=1, prior_flows=1, hidden_units=(8,), prior_hidden_units=(8,), seed=0)
    reason = bits_back.supports(model)
    assert reason and "\n" not in reason and "local bits-back" in reason
    assert (posterior if posterior != "gaussian" else prior) in reason


def test_coding_refuses_unsupported_models():
    flowed = tiny("VAE", SHAPE, 2, posterior="iaf", num_flows=1)
    with pytest.raises(ValueError, match="local bits-back"):
        bits_back.encode(flowed, random_images(2, 2, SHAPE))
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
