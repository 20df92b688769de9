"""RealNVP's bijectors: invertibility, brute-force Jacobian log-dets, masks, squeeze order."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from jacobians import brute_force_log_det
from zoo import bijectors as zb
from zoo.layers import MovingMoments

tfb = tfp.bijectors
SHAPE = (4, 4, 2)
D = int(np.prod(SHAPE))


def random_conditioner(seed, channels=SHAPE[-1], additive=False, calls=None):
    """A fixed random convolutional `b * x -> (shift, log_scale)`."""
    rng = np.random.default_rng(seed)
    k_shift = tf.constant(rng.normal(0, 0.5, (3, 3, channels, channels)), tf.float32)
    k_scale = tf.constant(rng.normal(0, 0.5, (3, 3, channels, channels)), tf.float32)

    def conditioner(kept):
        if calls is not None:
            calls.append(1)
        shift = tf.nn.conv2d(kept, k_shift, 1, "SAME") + 0.3
        return shift, None if additive else tf.tanh(tf.nn.conv2d(kept, k_scale, 1, "SAME")) + 0.1
    return conditioner


def factories():
    """name -> (zero-argument bijector factory, input sampler). Each call builds a fresh
    bijector (as the models do per call), so no TFP cache links forward and inverse."""
    h, w, c = SHAPE
    moments = (tf.constant([0.3, -0.2]), tf.constant([2.0, 0.5]))
    normal = lambda rng, n: rng.normal(size=(n, *SHAPE)).astype(np.float32)  # noqa: E731
    pixels = lambda rng, n: rng.uniform(0.01, 16.99, (n, *SHAPE)).astype(np.float32)  # noqa: E731
    return {
        "checkerboard0": (lambda: zb.AffineCoupling(zb.checkerboard_mask(h, w, 0), random_conditioner(0)), normal),
        "checkerboard1": (lambda: zb.AffineCoupling(zb.checkerboard_mask(h, w, 1), random_conditioner(1)), normal),
        "channel0": (lambda: zb.AffineCoupling(zb.channel_mask(c, 0), random_conditioner(2)), normal),
        "channel1": (lambda: zb.AffineCoupling(zb.channel_mask(c, 1), random_conditioner(3)), normal),
        "additive": (lambda: zb.AffineCoupling(zb.checkerboard_mask(h, w, 0),
                                               random_conditioner(4, additive=True)), normal),
        "squeeze": (lambda: zb.Squeeze(), normal),
        "unsqueeze": (lambda: tfb.Invert(zb.Squeeze()), lambda rng, n: rng.normal(
            size=(n, 2, 2, 8)).astype(np.float32)),
        "factor_out": (lambda: zb.FactorOut(zb.AffineCoupling(zb.checkerboard_mask(h, w, 0),
                                                              random_conditioner(5, channels=1))), normal),
        "logit": (lambda: zb.logit_preprocess(17, alpha=0.05), pixels),
        "batch_norm": (lambda: zb.BatchNorm(moments), normal),
        "multi_scale": (lambda: tfb.Chain([
            tfb.Invert(zb.Squeeze()),
            zb.FactorOut(zb.AffineCoupling(zb.checkerboard_mask(2, 2, 1), random_conditioner(6, 4))),
            zb.AffineCoupling(zb.channel_mask(8, 0), random_conditioner(7, 8)), zb.Squeeze(),
            zb.AffineCoupling(zb.checkerboard_mask(h, w, 0), random_conditioner(8)),
            zb.logit_preprocess(17)]), pixels),
    }


CASES = sorted(factories())


def event_shape(x):
    return [None, *x.shape[1:]]


@pytest.mark.parametrize("name", CASES)
def test_inverse_of_forward_and_forward_of_inverse_in_a_function_with_dynamic_batch(name):
    make, draw = factories()[name]
    x = draw(np.random.default_rng(0), 5)
    spec = tf.TensorSpec(event_shape(x), tf.float32)
    forward = tf.function(lambda x: make().forward(x), input_signature=[spec])
    y = forward(x).numpy()
    inverse = tf.function(lambda y: make().inverse(y), input_signature=[tf.TensorSpec(event_shape(y), tf.float32)])
    np.testing.assert_allclose(inverse(y), x, rtol=1e-5, atol=1e-5)
    assert y.shape != x.shape or not np.allclose(y, x), "a trivial bijector tests nothing"
    # The other direction, from points of the output space.
    if name in ("logit", "multi_scale"):  # outputs of the bounded input domain
        y2 = forward(draw(np.random.default_rng(1), 3)).numpy()
    else:
        y2 = np.random.default_rng(2).normal(size=(3, *y.shape[1:])).astype(np.float32)
    np.testing.assert_allclose(forward(inverse(y2)), y2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(inverse(y[:2]), x[:2], rtol=1e-5, atol=1e-5)  # another batch size


@pytest.mark.parametrize("name", CASES)
def test_log_det_equals_brute_force_jacobian_and_inverse_is_its_negative(name):
    make, draw = factories()[name]
    x = draw(np.random.default_rng(3), 4)
    expected = brute_force_log_det(make, x)
    fldj = make().forward_log_det_jacobian(x, event_ndims=3).numpy()
    assert fldj.shape == (4,)
    np.testing.assert_allclose(fldj, expected, rtol=1e-4, atol=1e-4)
    y = make().forward(x)
    np.testing.assert_allclose(make().inverse_log_det_jacobian(y, event_ndims=3), -fldj,
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind,which", [("checkerboard", 0), ("checkerboard", 1),
                                        ("channel", 0), ("channel", 1)])
def test_masks_leave_exactly_the_conditioning_half_unchanged(kind, which):
    h, w, c = SHAPE
    mask = zb.checkerboard_mask(h, w, which) if kind == "checkerboard" else zb.channel_mask(c, which)
    other = zb.checkerboard_mask(h, w, 1 - which) if kind == "checkerboard" else zb.channel_mask(c, 1 - which)
    full = (mask * tf.ones(SHAPE)).numpy()[0]
    assert full.sum() == D // 2
    np.testing.assert_array_equal(full + (other * tf.ones(SHAPE)).numpy()[0], np.ones(SHAPE))
    x = np.random.default_rng(4).normal(size=(3, *SHAPE)).astype(np.float32)
    y = zb.AffineCoupling(mask, random_conditioner(9)).forward(x).numpy()
    kept = np.broadcast_to(full, x.shape) == 1  # the conditioning half
    np.testing.assert_array_equal(y[kept], x[kept])
    assert np.all(y[~kept] != x[~kept])
    if kind == "checkerboard":
        rows, cols = np.indices((h, w))
        np.testing.assert_array_equal(full[..., 0], ((rows + cols) % 2 == which).astype(np.float32))
    else:
        np.testing.assert_array_equal(full[0, 0], [1.0 - which, float(which)])


def test_bad_masks_are_refused():
    with pytest.raises(ValueError, match="parity must be 0 or 1"):
        zb.checkerboard_mask(4, 4, 2)
    with pytest.raises(ValueError, match="even number of channels"):
        zb.channel_mask(3)
    with pytest.raises(ValueError, match="even height and width"):
        zb.Squeeze().forward(tf.zeros([1, 3, 4, 1]))


def test_squeeze_uses_the_papers_channel_order():
    x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    y = zb.Squeeze().forward(x).numpy()
    assert y.shape == (2, 2, 2, 12)
    for i, j, di, dj, c in np.ndindex(2, 2, 2, 2, 3):
        assert y[:, i, j, 4 * c + 2 * di + dj].tolist() == x[:, 2 * i + di, 2 * j + dj, c].tolist()


def test_coupling_network_runs_once_per_direction():
    calls = []
    x = tf.constant(np.random.default_rng(5).normal(size=(2, *SHAPE)), tf.float32)
    chain = tfb.Chain([zb.Squeeze(), zb.AffineCoupling(zb.checkerboard_mask(4, 4, 0),
                                                       random_conditioner(0, calls=calls))])
    y = chain.forward(x)
    chain.forward_log_det_jacobian(x, event_ndims=3)
    assert len(calls) == 1
    fresh = tfb.Chain([zb.Squeeze(), zb.AffineCoupling(zb.checkerboard_mask(4, 4, 0),
                                                       random_conditioner(0, calls=calls))])
    fresh.inverse(y)
    fresh.inverse_log_det_jacobian(y, event_ndims=3)
    assert len(calls) == 2


def test_batch_norm_with_batch_moments_standardizes_and_moves_the_running_averages():
    x = np.random.default_rng(6).normal(2.0, 3.0, size=(64, *SHAPE)).astype(np.float32)
    layer = MovingMoments(momentum=0.9)
    bijector = zb.BatchNorm(lambda x: layer(x, training=True))
    y = bijector.forward(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    batch_mean, batch_var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * batch_mean, rtol=1e-4)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * batch_var, rtol=1e-4)
    ldj = bijector.forward_log_det_jacobian(x, event_ndims=3).numpy()
    np.testing.assert_allclose(ldj, -0.5 * 16 * np.log(batch_var + 1e-4).sum(), rtol=1e-4)
    with pytest.raises(ValueError, match="inverse needs its moments as tensors"):
        bijector.inverse(y)


def test_logit_preprocessing_log_det_puts_bits_on_the_pixel_scale():
    """For v uniform in one pixel bin, exp(log N(y) + ldj) integrates the density of v;
    the ldj includes -log L per dimension (the 1/L scaling)."""
    v = tf.constant([[[[0.5]]]])
    ldj = zb.logit_preprocess(256, alpha=0.05).forward_log_det_jacobian(v, event_ndims=3).numpy()
    p = 0.05 + 0.9 * 0.5 / 256
    np.testing.assert_allclose(ldj, np.log(0.9 / 256) - np.log(p) - np.log(1 - p), rtol=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        zb.logit_preprocess(256, alpha=0.5)


@pytest.mark.parametrize("alpha", [0.5, -0.01, "0.05", True, None])
def test_check_alpha_refuses_by_name(alpha):
    """The one alpha check that logit_preprocess, RealNVP and Glow share: a number in [0, 0.5),
    neither cast from a string nor a bool."""
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 0.5\)"):
        zb.check_alpha(alpha)
    assert zb.check_alpha(np.float32(0.05)) == pytest.approx(0.05)
