import itertools

import numpy as np
import pytest
import tensorflow as tf

from zoo.distributions import DiscretizedLogisticMixture


def random_params(rng, batch, channels, k=4, extreme=True):
    """Mixture parameters `[batch, ...]`; with `extreme`, means far outside [-1, 1] and
    log-scales from -12 (tiny: all mass in one bin) to 20 (far wider than the pixel range)."""
    logits = rng.normal(size=(batch, k)) * 3
    locs = rng.normal(size=(batch, channels, k))
    log_scales = rng.uniform(-5, 1, size=(batch, channels, k))
    if extreme:
        locs = np.where(rng.uniform(size=locs.shape) < 0.3, rng.choice([-40.0, -1.0, 1.0, 40.0], locs.shape), locs)
        log_scales = np.where(rng.uniform(size=log_scales.shape) < 0.4,
                              rng.choice([-12.0, -7.0, 4.0, 20.0], log_scales.shape), log_scales)
    coeffs = np.tanh(rng.normal(size=(batch, channels * (channels - 1) // 2, k)) * 2) if channels > 1 else None
    return logits, locs, log_scales, coeffs


def mixture(params, num_levels):
    logits, locs, log_scales, coeffs = params
    return DiscretizedLogisticMixture(logits, locs, log_scales, coeffs, num_levels=num_levels)


def all_values(num_levels, channels):
    return np.array(list(itertools.product(range(num_levels), repeat=channels)), np.int32)


# ---- the paper's formula in float64 numpy ------------------------------------------

def sigmoid(z):
    """1 / (1 + e^-z), accurate in both tails (no cancellation)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def reference_log_prob(params, values, num_levels):
    """Salimans et al. 2017, eq. 2-3, in float64: per component and colour the logistic's
    mass on the value's bin, sigma((x + h - mu)/s) - sigma((x - h - mu)/s), the edge
    bins reaching to -inf / +inf, means shifted by coeffs times earlier colours.
    The difference is taken in the tail where it does not cancel: sigma(b) - sigma(a) =
    sigma(-a) - sigma(-b)."""
    logits, locs, log_scales, coeffs = (None if p is None else np.asarray(p, np.float64) for p in params)
    v = np.asarray(values)  # [batch, C]
    x = 2.0 * v / (num_levels - 1) - 1.0
    h = 1.0 / (num_levels - 1)
    log_pi = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    total = log_pi.copy()
    for c in range(v.shape[1]):
        mean = locs[:, c].copy()
        for j in range(c):
            mean += coeffs[:, c * (c - 1) // 2 + j] * x[:, j:j + 1]
        s = np.exp(log_scales[:, c])
        b = (x[:, c:c + 1] + h - mean) / s
        a = (x[:, c:c + 1] - h - mean) / s
        mass = np.where(a > 0, sigmoid(-a) - sigmoid(-b), sigmoid(b) - sigmoid(a))
        mass = np.where(v[:, c:c + 1] == 0, sigmoid(b), np.where(v[:, c:c + 1] == num_levels - 1, sigmoid(-a), mass))
        total += np.log(mass)
    m = total.max(-1, keepdims=True)
    return (m + np.log(np.exp(total - m).sum(-1, keepdims=True)))[:, 0]


# ---- normalization -------------------------------------------------------------------

@pytest.mark.parametrize("num_levels", [2, 17, 256])
def test_grey_probabilities_over_all_levels_sum_to_one(num_levels):
    params = random_params(np.random.default_rng(num_levels), 40, 1)
    dist = mixture(params, num_levels)
    values = all_values(num_levels, 1)[:, None]  # [L, 1, 1] against batch [40]
    log_p = dist.log_prob(values)
    assert log_p.dtype == tf.float32 and log_p.shape == (num_levels, 40)
    total = np.exp(log_p.numpy().astype(np.float64)).sum(axis=0)
    np.testing.assert_allclose(total, 1.0, atol=1e-5)


@pytest.mark.parametrize("num_levels", [2, 4])
def test_rgb_joint_over_all_colours_sums_to_one(num_levels):
    params = random_params(np.random.default_rng(7), 40, 3)
    colours = all_values(num_levels, 3)[:, None]  # [L^3, 1, 3]
    log_p = mixture(params, num_levels).log_prob(colours)
    assert log_p.dtype == tf.float32 and log_p.shape == (num_levels ** 3, 40)
    np.testing.assert_allclose(np.exp(log_p.numpy().astype(np.float64)).sum(axis=0), 1.0, atol=1e-5)


# ---- the formula ---------------------------------------------------------------------

@pytest.mark.parametrize("channels,num_levels", [(1, 2), (1, 17), (1, 256), (3, 4), (3, 256)])
def test_log_prob_equals_the_papers_formula_in_float64(channels, num_levels):
    rng = np.random.default_rng(channels * 1000 + num_levels)
    params = random_params(rng, 300, channels, extreme=False)
    values = rng.integers(0, num_levels, (300, channels)).astype(np.int32)
    values[:20] = 0
    values[20:40] = num_levels - 1  # the edge bins
    ours = mixture(params, num_levels).log_prob(values).numpy()
    np.testing.assert_allclose(ours, reference_log_prob(params, values, num_levels), rtol=1e-5, atol=2e-5)


def test_log_prob_is_exact_where_the_paper_falls_back_to_the_bin_centre():
    """Tiny scales and values far in a tail: the bins' masses (1e-30 and less) are below
    float32's resolution of sigma differences, where openai/pixel-cnn switches to the
    density at the bin's centre. The log-space identity keeps the exact value."""
    rng = np.random.default_rng(5)
    n = 200
    params = (rng.normal(size=(n, 3)), rng.uniform(-1.0, -0.6, (n, 1, 3)), rng.uniform(-4, -2.5, (n, 1, 3)), None)
    values = rng.integers(180, 255, (n, 1)).astype(np.int32)
    ref = reference_log_prob(params, values, 256)
    assert np.all(ref < np.log(1e-5))  # mostly the fallback's regime
    ours = mixture(params, 256).log_prob(values).numpy()
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    # The naive float32 difference of sigmoids underflows to 0 there (log = -inf).
    s = np.exp(params[2][:, 0].astype(np.float32))
    x = (2.0 * values / 255 - 1).astype(np.float32)
    naive = sigmoid((x + 1 / 255 - params[1][:, 0]) / s).astype(np.float32) - \
        sigmoid((x - 1 / 255 - params[1][:, 0]) / s).astype(np.float32)
    assert np.any(naive.max(axis=-1) == 0)


def test_gradients_are_finite_for_extreme_parameters():
    params = [tf.constant(p, tf.float32) for p in random_params(np.random.default_rng(3), 50, 3)]
    values = np.random.default_rng(4).integers(0, 256, (50, 3)).astype(np.int32)
    with tf.GradientTape() as tape:
        tape.watch(params)
        log_p = mixture(params, 256).log_prob(values)
    assert np.all(np.isfinite(log_p))
    for g in tape.gradient(log_p, params):
        assert np.all(np.isfinite(g))


# ---- sampling ------------------------------------------------------------------------

def conditional_gaps(log_joint, drawn, num_levels):
    """For one pixel's joint table `[L^C]` and a drawn colour `[C]`: per colour c, how far
    log p(drawn_c | drawn_<c) is below the best value's (0 where it is the mode)."""
    p = np.exp(log_joint.astype(np.float64)).reshape([num_levels] * len(drawn))
    gaps = []
    for c in range(len(drawn)):
        marginal = p[tuple(drawn[:c])].sum(axis=tuple(range(1, len(drawn) - c)))
        gaps.append(np.log(marginal.max()) - np.log(marginal[drawn[c]]))
    return np.array(gaps)


@pytest.mark.parametrize("channels,num_levels", [(1, 17), (1, 256), (3, 4)])
@pytest.mark.parametrize("temperature", [0.0, 1e-4])
def test_temperature_near_zero_draws_the_mode(channels, num_levels, temperature):
    """Each colour is the mode of its conditional given the colours drawn before it; at
    temperature eps a value within ~eps of the mode's log-probability may tie with it."""
    params = random_params(np.random.default_rng(11), 30, channels, extreme=False)
    dist = mixture(params, num_levels)
    log_joint = dist.log_prob(all_values(num_levels, channels)[:, None]).numpy()  # [L^C, 30]
    for seed in range(3):
        drawn = dist.tempered_sample(temperature, tf.constant([seed, 1])).numpy()
        gaps = np.array([conditional_gaps(log_joint[:, i], drawn[i], num_levels) for i in range(30)])
        assert gaps.max() <= (1e-5 if temperature == 0 else 50 * temperature)


@pytest.mark.parametrize("channels,num_levels", [(1, 5), (3, 2)])
def test_samples_follow_the_probabilities_and_stay_in_range(channels, num_levels):
    params = random_params(np.random.default_rng(2), 1, channels, extreme=False)
    dist = mixture(params, num_levels)
    n = 20000
    samples = dist.sample(n, seed=(1, 2)).numpy()[:, 0]  # [n, C]
    assert samples.dtype == np.int32 and samples.min() >= 0 and samples.max() < num_levels
    colours = all_values(num_levels, channels)
    probs = np.exp(dist.log_prob(colours[:, None]).numpy()[:, 0])
    index = np.ravel_multi_index(samples.T, [num_levels] * channels)
    freq = np.bincount(index, minlength=len(colours)) / n
    np.testing.assert_allclose(freq, probs, atol=4 * np.sqrt(0.25 / n))
    tempered = dist.tempered_sample(1.0, tf.constant([3, 4]))
    assert tempered.shape == (1, channels)


def test_sampling_is_seeded():
    dist = mixture(random_params(np.random.default_rng(1), 8, 3), 256)
    a = dist.tempered_sample(0.8, tf.constant([5, 6])).numpy()
    np.testing.assert_array_equal(a, dist.tempered_sample(0.8, tf.constant([5, 6])))
    assert not np.array_equal(a, dist.tempered_sample(0.8, tf.constant([5, 7])))


# ---- bad input -----------------------------------------------------------------------

def test_bad_parameters_are_refused():
    rng = np.random.default_rng(0)
    logits, locs, log_scales, coeffs = random_params(rng, 2, 3)
    with pytest.raises(ValueError, match=r"coeffs \[\.\.\., 3, K\] for 3 colours"):
        DiscretizedLogisticMixture(logits, locs, log_scales, None, num_levels=4)
    with pytest.raises(ValueError, match=r"coeffs \[\.\.\., 3, 4\]"):
        DiscretizedLogisticMixture(logits, locs, log_scales, coeffs[:, :2], num_levels=4)
    with pytest.raises(ValueError, match="locs and log_scales"):
        DiscretizedLogisticMixture(logits[:, :2], locs, log_scales, coeffs, num_levels=4)
    with pytest.raises(ValueError, match="num_levels must be >= 2"):
        DiscretizedLogisticMixture(logits, locs, log_scales, coeffs, num_levels=1)
