"""Bits-back coding for VAEs (`zoo.codec.bits_back`): Gaussians on the latent grid (masses,
code lengths, undoing pops), the VAE's per-pixel probabilities against its own likelihood,
bit-exact round trips on tiny random-weight VAEs (binary, 17 levels with the digits
models' logistic mixture and with a categorical, convolutional networks, a first pop past
the initial words, a decode in a fresh process with other thread settings, every posterior
flow and flow prior), the flows' inverse and the chain of conditionals local bits-back
codes with, the stream's rate against the -ELBO, and refusals: other models, corrupted or
mismatched streams."""

import subprocess
import sys
import textwrap
from pathlib import Path

import constriction
import numpy as np
import pytest
import tensorflow as tf
from scipy import special

from tiny_models import random_images, tiny
import zoo.codec
from zoo.codec import bits_back, container, latent_grid
from zoo.codec.latent_grid import STEP, Chain, gaussian_masses
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


def window_masses(mean, std, window=latent_grid.WINDOW):
    """Every grid point of N(mean, std^2)'s window and its mass P(cell) P(point | cell)."""
    first, cells = latent_grid._cells(mean, std, window)
    points = np.concatenate([(first + c) * latent_grid.CELL + np.arange(latent_grid.CELL) for c in range(len(cells))])
    masses = np.concatenate([cells[c] * latent_grid._points(mean, std, first + c) for c in range(len(cells))])
    return points, masses


@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (0.3, 0.05), (-2.5, 2e-3), (1.0, 1e-5)])
def test_grid_masses_sum_to_one_and_are_the_gaussians_density_times_the_step(mean, std):
    points, masses = window_masses(mean, std)
    np.testing.assert_allclose(masses.sum(), 1.0, rtol=1e-12)
    x = points * STEP
    density = np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))
    if std > 100 * STEP:  # the midpoint rule, relative error about (STEP / std)^2 / 24
        near = np.abs(x - mean) < 4 * std
        np.testing.assert_allclose(masses[near], density[near] * STEP, rtol=1e-3)
    else:  # narrower than a step: the point nearest the mean holds almost everything
        assert masses[np.argmin(np.abs(x - mean))] > 0.5


def test_gaussian_masses_are_accurate_in_both_tails():
    edges = np.concatenate([[-np.inf], np.linspace(-40, 40, 801), [np.inf]])
    for mean, std in [(0.0, 1.0), (-3.0, 0.3), (3.0, 0.3)]:
        masses = gaussian_masses(edges, mean, std)
        np.testing.assert_allclose(masses.sum(), 1.0, rtol=1e-12)
        # In log space, log(Phi(b) - Phi(a)) = log Phi(b) + log(1 - exp(log Phi(a) - log Phi(b))),
        # mirrored above the mean: the reference keeps relative precision where Phi is ~0 or ~1.
        t = (edges - mean) / std
        a, b = t[:-1], t[1:]
        with np.errstate(divide="ignore"):  # the branch np.where drops meets log(0)
            below = special.log_ndtr(b) + np.log1p(-np.exp(special.log_ndtr(a) - special.log_ndtr(b)))
            above = special.log_ndtr(-a) + np.log1p(-np.exp(special.log_ndtr(-b) - special.log_ndtr(-a)))
        reference = np.where(a > 0, above, below)
        finite = np.isfinite(reference) & (reference > -700)
        np.testing.assert_allclose(np.log(masses[finite]), reference[finite], rtol=1e-9, atol=1e-9)
    # 20 sigma above a mean of -3, Phi is 1 to double precision, so Phi(b) - Phi(a) would be 0.
    far = gaussian_masses([3.0, 3.1], -3.0, 0.3)
    assert special.ndtr(3.1 / 0.3 + 10) - special.ndtr(3.0 / 0.3 + 10) == 0 and far[0] > 1e-100
    with pytest.raises(ValueError, match="standard deviation > 0"):
        gaussian_masses(edges, 0.0, 0.0)


def seeded_coder(words=64):
    return constriction.stream.stack.AnsCoder(np.random.default_rng(0).integers(1, 2**32, words).astype(np.uint32))


def test_pushes_cost_minus_log2_their_mass_and_pops_undo_them():
    rng = np.random.default_rng(1)
    coder, start = seeded_coder(), seeded_coder().get_compressed()
    params = [(rng.normal(), std) for std in rng.choice([1.0, 0.05, 1e-3, 1e-5], size=300)]
    values = [int(np.round((m + s * rng.normal()) / STEP)) for m, s in params]
    ideal = 0.0
    for k, (m, s) in zip(values, params):
        points, masses = window_masses(m, s)
        ideal -= np.log2(masses[points == k][0])
        latent_grid.push(coder, k, m, s)
    grown = 32 * (len(coder.get_compressed()) - len(start))
    assert ideal - 64 < grown < ideal + 64 + 1e-3 * ideal, (grown, ideal)  # 2^-24 quantization, two words
    for k, (m, s) in reversed(list(zip(values, params))):
        assert latent_grid.pop(coder, m, s) == k
    np.testing.assert_array_equal(coder.get_compressed(), start)
    with pytest.raises(ValueError, match="more than 6 standard deviations"):
        latent_grid.push(coder, int(17 / STEP), 0.0, 1.0)


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
    assert isinstance(payload, bytes)
    # Only the initial words the first pops read are stored; the rest are left out.
    assert 0 < bits_back.initial_bits(payload) < 32 * len(bits_back.initial_words(model))
    decoded = bits_back.decode(model, payload, count, None, 3)
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, images)


def conv_vae():
    return tiny("VAE", (16, 16, 1), 2, latent_dim=4, network="conv", conv_filters=(4, 4, 4, 4, 4, 8),
                deconv_filters=(8, 4, 4, 4, 4, 4))


def test_round_trip_is_bit_exact_through_the_convolutional_networks():
    model = conv_vae()
    images = random_images(3, 2, (16, 16, 1), seed=4)
    data = zoo.codec.compress(model, images, name="tiny")
    np.testing.assert_array_equal(zoo.codec.decompress(data, model=model), images)
    assert zoo.codec.initial_bits(data) == bits_back.initial_bits(container.unpack(data)[2]) > 0


def test_a_first_pop_beyond_the_initial_words_round_trips_or_is_an_error(monkeypatch):
    """With a tenth of the initial words, the first two images pop more bits than the stack
    holds: the stack pops past its end (invertibly), drawing latents far in their tails,
    which either code (and decode to the same images) or leave the prior's window (a
    one-line ValueError); never other images."""
    monkeypatch.setattr(bits_back, "INITIAL_WORDS_PER_DIMENSION", 0.1)
    for seed in range(3):
        model = tiny_vae("binary", latent_dim=20, seed=seed)
        assert len(bits_back.initial_words(model)) == 2
        images = random_images(3, 2, SHAPE, seed=7)
        try:
            payload = bits_back.encode(model, images)
        except ValueError as error:
            assert "standard deviations" in str(error) and "\n" not in str(error)
            continue
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
    (at most two words) and the count of initial words kept (a varint, two bytes here). The grid (2^-16) moves the rate by far less. Without the bits
    back the rate would be higher by the posterior's entropy on the grid, about 16 bits a
    latent dimension."""
    model = tiny_vae(name)
    n = 300
    images = random_images(n, model.num_levels, SHAPE, seed=5)
    payload = bits_back.encode(model, images)
    rate = (8 * len(payload) - bits_back.initial_bits(payload)) / n
    one_draw = -model.elbo(images).numpy().astype(np.float64) / np.log(2.0)
    expected = -model.elbo(images, num_samples=256).numpy().astype(np.float64) / np.log(2.0)
    spread = np.std(one_draw - expected)
    tolerance = 4 * spread / np.sqrt(n) + 80 / n
    assert spread > 0.1, "one draw's -ELBO scatters: the tolerance is not vacuous"
    # The reference the compress table uses: the expected -ELBO from ELBO_DRAWS draws.
    reference = bits_back.ideal_bits(model, images).mean()
    assert abs(reference - expected.mean()) < 4 * spread * np.sqrt((1 / bits_back.ELBO_DRAWS + 1 / 256) / n)
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
    images = tf.constant(image[None], tf.int32)

    def u_of(z0):
        z = model.posterior_flows(images)(tf.constant(z0[None, None], tf.float32))[0]
        return model.prior_flow_inverse(z).numpy()[0].astype(np.float64)
    return u_of


@pytest.mark.parametrize("posterior, prior", [("planar", "normal"), ("sylvester_o", "maf"), ("gaussian", "realnvp")])
def test_the_flows_inverse_recovers_the_posterior_draw_and_its_jacobian(posterior, prior):
    """Local bits-back's R(z0 | u): Newton's inverse of z0 -> u at a draw 1.5 std from the
    posterior mean, and A = du/dz0^-1 against central differences."""
    model = flow_vae(posterior, prior)
    image = random_images(1, 2, SHAPE, seed=3)[0]
    density = bits_back._Passes(model).posterior(image)
    z0 = density.base.mean + 1.5 * density.base.std * np.sign(np.arange(model.latent_dim) % 2 - 0.5)
    u_of = noise_map(model, image)
    w, a = density.inverse(u_of(z0))
    np.testing.assert_allclose(w, z0, atol=1e-4)
    step = 1e-2
    jacobian = np.stack([(u_of(z0 + step * e) - u_of(z0 - step * e)) / (2 * step) for e in np.eye(model.latent_dim)],
                        axis=1)
    np.testing.assert_allclose(a @ jacobian, np.eye(model.latent_dim), atol=2e-2)


def test_chain_gives_each_dimensions_exact_conditional_and_push_undoes_pop():
    rng = np.random.default_rng(0)
    d = 4
    a = rng.normal(size=(d, d))
    covariance = a @ a.T / d + 0.1 * np.eye(d)
    mean = rng.normal(size=d)
    chain = Chain(mean, np.linalg.cholesky(covariance))
    coder = seeded_coder()
    start = coder.get_compressed()
    points = chain.pop(coder)
    centres, stds = chain.conditionals(points)
    v = points * STEP
    for i in range(d):  # the conditional by the Schur complement of the covariance
        gain = covariance[i, :i] @ np.linalg.inv(covariance[:i, :i]) if i else np.zeros(0)
        np.testing.assert_allclose(centres[i], mean[i] + gain @ (v[:i] - mean[:i]), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(stds[i] ** 2, covariance[i, i] - (gain @ covariance[:i, i] if i else 0.0),
                                   rtol=1e-9)
    chain.push(coder, points)
    np.testing.assert_array_equal(coder.get_compressed(), start)


def test_a_flow_vaes_stream_rate_is_its_elbo():
    """A Sylvester posterior with a MAF prior, coded by local bits-back: the rate against the
    model's own expected -ELBO (64 draws per image), tolerance as in
    `test_stream_rate_is_the_elbo`."""
    model = flow_vae("sylvester_o", "maf")
    n = 200
    images = random_images(n, 2, SHAPE, seed=11)
    payload = bits_back.encode(model, images)
    rate = (8 * len(payload) - bits_back.initial_bits(payload)) / n
    expected = bits_back.ideal_bits(model, images)
    spread = np.std(-model.elbo(images).numpy().astype(np.float64) / np.log(2.0) - expected)
    tolerance = 4 * spread / np.sqrt(n) + 80 / n
    assert abs(rate - expected.mean()) < tolerance, (rate, expected.mean(), tolerance)


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
    first_word = 1 + 4 * (bits_back.initial_bits(payload) // 32)  # after the count kept (a one-byte varint)
    for byte in (0, 1, first_word, len(payload) // 2, len(payload) - 1):  # the count, initial, pushed words
        for bit in (0, 3, 7):
            flipped = bytearray(payload)
            flipped[byte] ^= 1 << bit
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
