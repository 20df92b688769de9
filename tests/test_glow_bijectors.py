"""Glow's bijectors and parameter layers: invertibility, brute-force Jacobian
log-dets, actnorm's data-dependent init (also across two replicas), LU log-det."""

import numpy as np
import pytest
import tensorflow as tf

from distributed import isolated_mirrored
from jacobians import brute_force_log_det
from zoo import bijectors as zb
from zoo.layers import ActNormParams, GlowCouplingNet, Invertible1x1ConvWeight

SHAPE = (4, 4, 2)
WIDE = (2, 2, 4)  # channel couplings and 1x1 convs on 4 channels


def randomized(layer, seed=0, scale=0.3):
    """Non-trivial weights, away from the identity init."""
    rng = np.random.default_rng(seed)
    for w in layer.trainable_weights:
        w.assign(w.numpy() + rng.normal(0, scale, w.shape))
    return layer


def random_net(seed, out_channels):
    """A fixed random conv `[b, H, W, C/2] -> [b, H, W, out_channels]`."""
    rng = np.random.default_rng(seed)
    kernels = {}

    def net(x):
        c = x.shape[-1]
        if c not in kernels:
            kernels[c] = tf.constant(rng.normal(0, 0.5, (3, 3, c, out_channels)), tf.float32)
        return tf.nn.conv2d(x, kernels[c], 1, "SAME") + 0.2
    return net


def factories():
    """name -> (zero-argument bijector factory, event shape)."""
    actnorm = (tf.constant([0.3, -0.2]), tf.constant([0.5, -0.4]))
    plain = randomized(Invertible1x1ConvWeight(4, lu=False, seed=1))
    lu = randomized(Invertible1x1ConvWeight(4, lu=True, seed=2), seed=3)
    return {
        "actnorm": (lambda: zb.ActNorm(actnorm), SHAPE),
        "actnorm_per_example": (lambda: zb.ActNorm((tf.constant([[[[0.1, 0.2]]]] * 5),
                                                    tf.constant(np.linspace(-1, 1, 10).reshape(
                                                        5, 1, 1, 2), tf.float32))), SHAPE),
        "conv_plain": (lambda: zb.Invertible1x1Conv(*plain.params()), WIDE),
        "conv_lu": (lambda: zb.Invertible1x1Conv(*lu.params()), WIDE),
        "additive_coupling": (lambda: zb.channel_coupling(random_net(4, 2), 4, affine=False), WIDE),
        "affine_coupling": (lambda: zb.channel_coupling(random_net(5, 4), 4, affine=True), WIDE),
        "gaussian_split": (lambda: zb.gaussian_split(random_net(6, 4), 4), WIDE),
        "scale_pixels": (lambda: zb.ScalePixels(17), SHAPE),
    }


CASES = sorted(factories())


@pytest.mark.parametrize("name", CASES)
def test_inverts_both_ways_in_a_function_with_dynamic_batch(name):
    make, shape = factories()[name]
    x = np.random.default_rng(0).normal(size=(5, *shape)).astype(np.float32)
    spec = tf.TensorSpec([None, *shape], tf.float32)
    forward = tf.function(lambda x: make().forward(x), input_signature=[spec])
    inverse = tf.function(lambda y: make().inverse(y), input_signature=[spec])
    y = forward(x).numpy()
    assert not np.allclose(y, x), "a trivial bijector tests nothing"
    np.testing.assert_allclose(inverse(y), x, rtol=1e-5, atol=1e-5)
    y2 = np.random.default_rng(2).normal(size=(5, *shape)).astype(np.float32)
    np.testing.assert_allclose(forward(inverse(y2)), y2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_log_det_equals_brute_force_jacobian_and_inverse_is_its_negative(name):
    make, shape = factories()[name]
    x = np.random.default_rng(3).normal(size=(5, *shape)).astype(np.float32)
    expected = brute_force_log_det(make, x)
    fldj = make().forward_log_det_jacobian(x, event_ndims=3).numpy()
    assert fldj.shape == (5,)
    np.testing.assert_allclose(fldj, expected, rtol=1e-4, atol=1e-4)
    y = make().forward(x)
    np.testing.assert_allclose(make().inverse_log_det_jacobian(y, event_ndims=3), -fldj,
                               rtol=1e-4, atol=1e-4)


def test_couplings_keep_the_first_half_and_affine_scale_is_sigmoid_h_plus_2():
    x = np.random.default_rng(7).normal(size=(3, *WIDE)).astype(np.float32)
    net = random_net(8, 4)
    y = zb.channel_coupling(net, 4, affine=True).forward(x).numpy()
    np.testing.assert_array_equal(y[..., :2], x[..., :2])
    h = net(tf.constant(x[..., :2])).numpy()
    scale = 1 / (1 + np.exp(-(h[..., 2:] + 2)))
    np.testing.assert_allclose(y[..., 2:], (x[..., 2:] + h[..., :2]) * scale, rtol=1e-5, atol=1e-6)
    add = zb.channel_coupling(random_net(9, 2), 4, affine=False).forward(x).numpy()
    np.testing.assert_allclose(add[..., 2:] - x[..., 2:], random_net(9, 2)(x[..., :2]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="even number of channels"):
        zb.channel_coupling(net, 3)


@pytest.mark.parametrize("batch_shape", [(), (3,), (2, 3)])
def test_invertible_1x1_conv_is_a_per_pixel_matrix_product_for_any_batch_rank(batch_shape):
    # rank 4 runs as a 1 x 1 convolution, other ranks as an einsum: both are x @ W.
    w = randomized(Invertible1x1ConvWeight(4, lu=True, seed=2), seed=3).params()[0].numpy()
    x = np.random.default_rng(1).normal(size=(*batch_shape, *WIDE)).astype(np.float32)
    bijector = zb.Invertible1x1Conv(w)
    y = bijector.forward(x).numpy()
    np.testing.assert_allclose(y, x @ w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bijector.inverse(y), x, rtol=1e-4, atol=1e-4)


def test_lu_log_det_equals_slogdet_of_the_recomposed_weight_and_init_is_orthogonal():
    layer = Invertible1x1ConvWeight(6, lu=True, seed=4)
    w, log_det = layer.params()
    np.testing.assert_allclose(w.numpy() @ w.numpy().T, np.eye(6), atol=1e-5)  # a rotation
    np.testing.assert_allclose(log_det, 0.0, atol=1e-5)
    randomized(layer, seed=5)
    w, log_det = layer.params()
    np.testing.assert_allclose(log_det, tf.linalg.slogdet(tf.cast(w, tf.float64))[1], rtol=1e-5,
                               atol=1e-5)
    plain = Invertible1x1ConvWeight(6, lu=False, seed=4).params()[0].numpy()
    np.testing.assert_allclose(plain @ plain.T, np.eye(6), atol=1e-5)


def moments(y):
    return y.mean(axis=(0, 1, 2)), y.std(axis=(0, 1, 2))


def test_actnorm_init_standardizes_its_batch_and_then_stays():
    x = np.random.default_rng(6).normal([2.0, -1.0, 0.5], [3.0, 0.2, 1.0], (16, 4, 4, 3)).astype(np.float32)
    layer = ActNormParams(3)
    np.testing.assert_array_equal(zb.ActNorm(layer.params()).forward(x), x)  # identity before
    y = zb.ActNorm(layer.initialize(x)).forward(x).numpy()
    mean, std = moments(y)
    np.testing.assert_allclose(mean, 0.0, atol=1e-3)
    np.testing.assert_allclose(std, 1.0, atol=1e-3)
    np.testing.assert_allclose(zb.ActNorm(layer.params()).forward(x), y, rtol=1e-6)
    before = [w.numpy() for w in layer.weights]
    layer.initialize(x * 5.0 + 1.0)  # already initialized: no change
    for a, w in zip(before, layer.weights):
        np.testing.assert_array_equal(a, w.numpy())


def test_coupling_net_actnorms_standardize_its_hidden_maps_on_the_init_batch():
    x = np.random.default_rng(7).normal(1.0, 2.0, (16, 4, 4, 2)).astype(np.float32)
    net = GlowCouplingNet(4, 6, actnorm=True)
    out = net.initialize(x)
    np.testing.assert_array_equal(out, np.zeros((16, 4, 4, 4)))  # zero-initialized last conv
    h = net.conv_in(x)  # no bias: the actnorm's bias replaces it
    assert not net.conv_in.use_bias
    bias, log_scale = net.norms[0].params()
    mean, std = moments(((h + bias) * np.exp(log_scale)).numpy())
    np.testing.assert_allclose(mean, 0.0, atol=1e-3)
    np.testing.assert_allclose(std, 1.0, atol=1e-3)
    h = np.maximum(((h + bias) * np.exp(log_scale)).numpy(), 0.0)
    bias, log_scale = net.norms[1].params()
    mean, std = moments(((net.conv_mid(h) + bias) * np.exp(log_scale)).numpy())
    np.testing.assert_allclose(mean, 0.0, atol=1e-3)
    np.testing.assert_allclose(std, 1.0, atol=1e-3)
    half = GlowCouplingNet(4, 6, actnorm=True, dtype="mixed_bfloat16")  # a 16-bit net initializes too
    assert half.initialize(x).dtype == tf.float32  # the coupling's parameters: float32
    assert half.conv_in.compute_dtype == "bfloat16" and half.conv_out.compute_dtype == "float32"
    assert all(norm.initialized.numpy() == 1 and norm.bias.dtype == "float32" for norm in half.norms)


@pytest.mark.parametrize("actnorm", [True, False])
def test_coupling_net_folds_each_affine_map_into_its_convolution(actnorm):
    """The net computes conv_out(relu(an(conv_mid(relu(an(conv_in(x))))))) with the
    actnorms and the zero conv's exp(3 logs) applied after each conv, as written."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 5, 5, 2)).astype(np.float32)
    net = GlowCouplingNet(4, 6, actnorm=actnorm)
    net.initialize(x)
    for w in net.trainable_weights:  # every weight away from its initial value
        w.assign(rng.normal(0.0, 0.5, w.shape).astype(np.float32))

    def an(h, index):
        if not actnorm:
            return h
        bias, log_scale = net.norms[index].params()
        return (h + bias) * np.exp(log_scale)

    h = np.maximum(an(net.conv_in(x), 0), 0.0)
    h = np.maximum(an(net.conv_mid(h), 1), 0.0)
    expected = net.conv_out.conv(h) * np.exp(3.0 * net.conv_out.logs.numpy())
    np.testing.assert_allclose(net(x), expected, rtol=1e-4, atol=1e-5)
    half = GlowCouplingNet(4, 6, actnorm=actnorm, dtype="mixed_bfloat16")
    half.initialize(x)
    half.set_weights(net.get_weights())
    out = half(x)
    # bf16 hidden convolutions of weights folded in float32; the zero conv outputs float32
    assert out.dtype == tf.float32 and half.conv_mid.compute_dtype == "bfloat16"
    np.testing.assert_allclose(tf.cast(out, tf.float32), expected, rtol=0.05, atol=0.05 * np.abs(expected).max())


def test_actnorm_init_under_mirrored_strategy_uses_the_whole_global_batch(two_cpus):
    strategy = isolated_mirrored(two_cpus)
    rng = np.random.default_rng(8)
    # The two halves differ: per-replica moments would not standardize the whole batch.
    x = np.concatenate([rng.normal(3.0, 1.0, (8, 4, 4, 2)), rng.normal(-1.0, 2.0, (8, 4, 4, 2))]
                       ).astype(np.float32)
    with strategy.scope():
        layer = ActNormParams(2)
    batches = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(16))

    @tf.function
    def init(batch):
        return strategy.run(lambda b: layer.initialize(b)[0], args=(batch,))

    init(next(iter(batches)))
    for w in (layer.bias, layer.log_scale):  # every replica's copy holds the same values
        copies = [v.numpy() for v in strategy.experimental_local_results(w.value)]
        assert len(copies) == 2
        np.testing.assert_array_equal(copies[0], copies[1])
    y = zb.ActNorm(layer.params()).forward(x).numpy()
    mean, std = moments(y)
    np.testing.assert_allclose(mean, 0.0, atol=1e-3)
    np.testing.assert_allclose(std, 1.0, atol=1e-3)
