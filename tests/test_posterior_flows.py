"""VAE posterior flows (the layers of `zoo.layers.posterior_flow`; planar, gated IAF,
Householder and Sylvester bijectors): every kind's summed log-det against a brute-force
slogdet of dzK/dz0 at random amortized parameters, the invertibility constructions
(planar's u_hat for any raw u, orthogonal Q, tanh-bounded triangular diagonals),
Householder's reflections, IAF's autoregressive structure, inverses, the draws-major
pass the VAE runs, configs and refused arguments."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.bijectors import (Householder, Planar, Sylvester, bounded_triangular, householder_flow,
                           householder_product, orthogonalize, reversal)
from zoo.bijectors.base import ZooBijector
from zoo.bijectors.planar import invertible_u
from zoo.layers.posterior_flow import KINDS, POSTERIOR_FLOWS, posterior_flow

D, H, K, N = 4, 5, 3, 6
SMALL = {"iaf": {"hidden_units": (8, 8)}}


def flow(kind, dtype="float64", latent_dim=D, num_flows=K, scale=0.6, seed=0, **options):
    """A built layer with every weight (biases included) drawn N(0, scale)."""
    layer = posterior_flow(kind, latent_dim, num_flows, dtype=dtype, **{**SMALL.get(kind, {}), **options})
    layer(tf.zeros([1, latent_dim], dtype), tf.zeros([1, H], dtype))
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.normal(0, scale, w.shape))
    return layer


def inputs(dtype="float64", latent_dim=D, seed=1):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.normal(size=(N, latent_dim)), dtype),
            tf.constant(rng.normal(size=(N, H)), dtype))


def brute_force(fn, z0):
    """log|det dfn(z0)/dz0| per row of z0 (float64 slogdet of the batch Jacobian)."""
    with tf.GradientTape() as tape:
        tape.watch(z0)
        z = fn(z0)
    jac = tape.batch_jacobian(z, z0).numpy().astype(np.float64)
    sign, log_det = np.linalg.slogdet(jac)
    assert (sign != 0).all()
    return log_det, jac


@pytest.mark.parametrize("kind", KINDS)
def test_log_det_is_the_log_abs_determinant_of_the_jacobian(kind):
    layer = flow(kind)
    z0, h = inputs()
    expected, _ = brute_force(lambda z: layer(z, h)[0], z0)
    zk, log_det = layer(z0, h)
    assert zk.shape == (N, D) and log_det.shape == (N,)
    np.testing.assert_allclose(log_det.numpy(), expected, atol=1e-4)
    if kind != "householder":
        assert np.ptp(expected) > 0.1  # non-trivial: the log-det varies across images
    bijector = layer.bijector(h)  # the Chain: same map and log-det as `call`
    np.testing.assert_allclose(bijector.forward(z0).numpy(), zk.numpy(), atol=1e-10)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(z0, event_ndims=1).numpy(),
                               log_det.numpy(), atol=1e-10)
    assert all(isinstance(f, ZooBijector) for f in layer.flows(h))


@pytest.mark.parametrize("kind", KINDS)
def test_draws_share_their_image_parameters(kind):
    """`transform` (the VAE's pass over S draws per image, `[S, batch, D]`) is `call` on
    each draw with its image's h."""
    layer = flow(kind, dtype="float32", scale=0.4)
    z0, h = inputs("float32")
    draws = tf.stack([z0, 2.0 * z0[::-1], -z0])
    zk, log_det = layer.transform(draws, h)
    for s in range(3):
        expected_z, expected_log_det = layer(draws[s], h)
        np.testing.assert_allclose(zk[s].numpy(), expected_z.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(log_det[s].numpy(), expected_log_det.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_log_det_and_inverse(kind):
    layer = flow(kind, dtype="float32", latent_dim=3, scale=0.4)
    z0, h = inputs("float32", latent_dim=3)
    expected, _ = brute_force(lambda z: layer(z, h)[0], z0)
    zk, log_det = layer(z0, h)
    assert zk.dtype == tf.float32 and log_det.dtype == tf.float32
    np.testing.assert_allclose(log_det.numpy(), expected, rtol=1e-4, atol=1e-4)
    back = layer.bijector(h).inverse(tf.identity(zk))  # a new tensor: no cached inverse
    np.testing.assert_allclose(back.numpy(), z0.numpy(), atol=1e-3)


def test_mixed_precision_outputs_are_float32():
    z0, h = inputs("float32")
    for kind in ("iaf", "sylvester_o"):
        layer = posterior_flow(kind, D, 2, dtype="mixed_bfloat16", **SMALL.get(kind, {}))
        zk, log_det = layer(z0, tf.cast(h, tf.bfloat16))
        assert zk.dtype == tf.float32 and log_det.dtype == tf.float32
        assert np.isfinite(log_det.numpy()).all()


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3, 1e6])
def test_planar_is_invertible_for_any_raw_u(scale):
    rng = np.random.default_rng(2)
    w = rng.normal(size=(64, D))
    u = scale * np.concatenate([rng.normal(size=(32, D)), -w[32:] * rng.uniform(0.5, 5, (32, 1))])
    u_hat = invertible_u(tf.constant(u), tf.constant(w)).numpy()
    rounding = 1e-14 * (1 + np.abs(np.sum(w * u, -1)))  # of w^T u_hat = w^T u + (m - w^T u)
    assert (np.sum(w * u_hat, -1) >= -1.0 - rounding).all()
    assert scale < 1 or (np.sum(w * u_hat, -1) < -0.99).any()  # very negative u nears the bound
    # u_hat differs from u only along w
    off = (u_hat - u) - np.sum((u_hat - u) * w, -1, keepdims=True) * w / np.sum(w * w, -1, keepdims=True)
    np.testing.assert_allclose(off, 0, atol=1e-8 * max(scale, 1))
    if scale <= 1.0:  # invertible in practice: the inverse recovers z
        z = tf.constant(rng.normal(size=(64, D)))
        bij = Planar(u, w, rng.normal(size=64))
        np.testing.assert_allclose(bij.inverse(tf.identity(bij.forward(z))).numpy(), z.numpy(), atol=1e-6)
        assert np.isfinite(bij.forward_log_det_jacobian(z, event_ndims=1).numpy()).all()


def test_planar_log_det_single_flow():
    rng = np.random.default_rng(3)
    u, w, b = rng.normal(size=(N, D)) * 3, rng.normal(size=(N, D)), rng.normal(size=N)
    z = tf.constant(rng.normal(size=(N, D)))
    expected, _ = brute_force(lambda x: Planar(u, w, b).forward(x), z)
    np.testing.assert_allclose(Planar(u, w, b).forward_log_det_jacobian(z, event_ndims=1).numpy(),
                               expected, atol=1e-8)


def test_householder_reflection_is_a_volume_preserving_involution():
    rng = np.random.default_rng(4)
    v, z = rng.normal(size=(N, D)), tf.constant(rng.normal(size=(N, D)))
    bij = Householder(v)
    y = bij.forward(z)
    np.testing.assert_allclose(Householder(v).forward(y).numpy(), z.numpy(), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(z, axis=-1), atol=1e-12)
    np.testing.assert_allclose(y.numpy() - z.numpy(),  # moves z along v only
                               -2 * np.sum(v * z, -1, keepdims=True) * v / np.sum(v * v, -1, keepdims=True),
                               atol=1e-12)
    log_det, jac = brute_force(lambda x: Householder(v).forward(x), z)
    np.testing.assert_allclose(log_det, 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(jac), -1, atol=1e-12)  # a reflection
    np.testing.assert_array_equal(bij.forward_log_det_jacobian(z, event_ndims=1).numpy(), np.zeros(N))
    vs = rng.normal(size=(N, 3, D))
    chain = householder_flow(vs)
    np.testing.assert_allclose(chain.forward(z).numpy(),  # H3 H2 H1 z
                               np.einsum("bij,bj->bi", householder_product(vs[:, ::-1]).numpy(), z),
                               atol=1e-12)


@pytest.mark.parametrize("num_householder", [1, 8])
def test_householder_q_is_orthogonal(num_householder):
    vs = tf.constant(np.random.default_rng(5).normal(size=(N, num_householder, D)), tf.float32)
    q = householder_product(vs).numpy()
    np.testing.assert_allclose(np.einsum("bij,bik->bjk", q, q), np.broadcast_to(np.eye(D), (N, D, D)),
                               atol=1e-5)
    layer = flow("sylvester_h", dtype="float32", num_householder=num_householder)
    for f in layer.flows(inputs("float32")[1]):
        q = f._q.numpy()
        np.testing.assert_allclose(np.einsum("bij,bik->bjk", q, q), np.broadcast_to(np.eye(D), (N, D, D)),
                                   atol=1e-5)


@pytest.mark.parametrize("num_ortho_vecs", [1, 2, D])
def test_sylvester_q_is_orthogonalized_within_the_amortized_span(num_ortho_vecs):
    layer = flow("sylvester_o", dtype="float32", num_ortho_vecs=num_ortho_vecs)
    _, h = inputs("float32")
    raw = tf.reshape(layer.amor_q(h), [N, K, D, num_ortho_vecs]).numpy()
    assert np.abs(np.einsum("bkdm,bkdn->bkmn", raw, raw) - np.eye(num_ortho_vecs)).max() > 0.1
    for i, f in enumerate(layer.flows(h)):
        q = f._q.numpy()
        assert q.shape == (N, D, num_ortho_vecs)
        np.testing.assert_allclose(np.einsum("bdm,bdn->bmn", q, q),
                                   np.broadcast_to(np.eye(num_ortho_vecs), (N,) + (num_ortho_vecs,) * 2),
                                   atol=1e-5)
        # Q's columns span the raw matrix's columns: projecting raw on them keeps it
        proj = np.einsum("bdm,bem,bek->bdk", q, q, raw[:, i])
        np.testing.assert_allclose(proj, raw[:, i], atol=1e-4 * np.abs(raw).max())
    a = tf.constant(np.random.default_rng(6).normal(size=(3, 7, 5)))
    q = orthogonalize(a).numpy()
    np.testing.assert_allclose(np.einsum("bdm,bdn->bmn", q, q), np.broadcast_to(np.eye(5), (3, 5, 5)),
                               atol=1e-6)


@pytest.mark.parametrize("kind", ["sylvester_o", "sylvester_h", "sylvester_t"])
def test_sylvester_triangles_have_the_bounded_diagonals_the_construction_promises(kind):
    layer = flow(kind, scale=2.0)  # large raw diagonals: tanh keeps them inside (-1, 1)
    _, h = inputs()
    m = layer.num_vectors
    full = tf.reshape(layer.amor_full(h), [N, K, m, m]).numpy()
    d1 = tf.reshape(layer.amor_diag1(h), [N, K, m]).numpy()
    d2 = tf.reshape(layer.amor_diag2(h), [N, K, m]).numpy()
    for i, f in enumerate(layer.flows(h)):
        r, r_tilde = f._r.numpy(), f._r_tilde.numpy()
        np.testing.assert_allclose(np.diagonal(r, axis1=-2, axis2=-1), np.tanh(d1[:, i]), atol=1e-12)
        np.testing.assert_allclose(np.diagonal(r_tilde, axis1=-2, axis2=-1), np.tanh(d2[:, i]), atol=1e-12)
        np.testing.assert_array_equal(np.tril(r, -1), 0)
        np.testing.assert_array_equal(np.tril(r_tilde, -1), 0)
        np.testing.assert_allclose(np.triu(r, 1), np.triu(full[:, i], 1))  # R~ from the lower part
        np.testing.assert_allclose(np.triu(r_tilde, 1), np.triu(np.swapaxes(full[:, i], -1, -2), 1))
        product = np.diagonal(r, axis1=-2, axis2=-1) * np.diagonal(r_tilde, axis1=-2, axis2=-1)
        assert (np.abs(product) < 1).all()  # every log-det factor 1 + R_ii R~_ii h' > 0
        if kind == "sylvester_t":
            np.testing.assert_array_equal(f._q.numpy(), np.eye(D) if i % 2 == 0 else np.eye(D)[::-1])
    r = bounded_triangular(tf.constant(full[:, 0]), tf.constant(1e4 * d1[:, 0])).numpy()
    assert (np.abs(np.diagonal(r, axis1=-2, axis2=-1)) <= 1).all()


def test_sylvester_with_fewer_vectors_moves_z_within_q_span_only():
    layer = flow("sylvester_o", num_ortho_vecs=2, num_flows=1)
    z0, h = inputs()
    (f,) = layer.flows(h)
    q = f._q.numpy()
    delta = f.forward(z0).numpy() - z0.numpy()
    np.testing.assert_allclose(delta - np.einsum("bdm,bem,be->bd", q, q, delta), 0, atol=1e-6)
    expected, _ = brute_force(lambda z: layer.flows(h)[0].forward(z), z0)
    np.testing.assert_allclose(f.forward_log_det_jacobian(z0, event_ndims=1).numpy(), expected, atol=1e-6)


def test_sylvester_bijector_with_a_permutation_and_its_inverse():
    rng = np.random.default_rng(7)
    r = bounded_triangular(rng.normal(size=(N, D, D)), 3 * rng.normal(size=(N, D)))
    r_tilde = bounded_triangular(rng.normal(size=(N, D, D)), 3 * rng.normal(size=(N, D)))
    bij = Sylvester(reversal(D, tf.float64), r, r_tilde, rng.normal(size=(N, D)))
    z = tf.constant(rng.normal(size=(N, D)))
    expected, _ = brute_force(lambda x: bij.forward(x), z)
    np.testing.assert_allclose(bij.forward_log_det_jacobian(z, event_ndims=1).numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(bij.inverse(tf.identity(bij.forward(z))).numpy(), z.numpy(), atol=1e-8)


def test_iaf_steps_are_autoregressive_in_alternating_orders():
    layer = flow("iaf", num_flows=2, scale=0.4)
    z0, h = inputs()
    steps = layer.flows(h)
    for step, later in zip(steps, (np.triu(np.ones((D, D)), 1), np.tril(np.ones((D, D)), -1))):
        log_det, jac = brute_force(lambda z: step.forward(z), z0)
        np.testing.assert_array_equal(jac * later, 0)  # output d ignores inputs after d in the order
        before = (1 - later - np.eye(D)) == 1
        assert (np.abs(jac).max(axis=0)[before] > 1e-6).all()  # ... and sees those before it
        sigma = 1 / (1 + np.exp(-step._params(z0)[1].numpy()))
        np.testing.assert_allclose(np.diagonal(jac, axis1=-2, axis2=-1), sigma, atol=1e-10)
        np.testing.assert_allclose(step.forward_log_det_jacobian(z0, event_ndims=1).numpy(), log_det,
                                   atol=1e-8)
    # h conditions every output, the first in each order included
    with tf.GradientTape() as tape:
        tape.watch(h)
        zk = layer(z0, h)[0]
    assert (np.abs(tape.batch_jacobian(zk, h).numpy()).max(axis=(0, 2)) > 1e-6).all()


def test_fresh_results_and_gradients_on_repeated_calls():
    """TFP caches bijector results globally by equal parameters: a second call on the same
    tensors after a weight change, or under a new tape, must recompute."""
    for kind in KINDS:
        layer = flow(kind, num_flows=2)
        z0, h = inputs()
        first = layer(z0, h)
        with tf.GradientTape() as tape:
            zk, log_det = layer(z0, h)
            loss = tf.reduce_sum(zk) + tf.reduce_sum(log_det)
        grads = tape.gradient(loss, layer.trainable_weights)
        assert all(g is not None for g in grads), kind
        assert min(np.abs(g.numpy()).max() for g in grads) > 0, kind
        rng = np.random.default_rng(8)
        for w in layer.weights:
            w.assign(w + rng.normal(0, 0.1, w.shape))
        second = layer(z0, h)
        assert np.abs(second[0].numpy() - first[0].numpy()).max() > 1e-6, kind
        if kind != "householder":
            assert np.abs(second[1].numpy() - first[1].numpy()).max() > 1e-6, kind
        with tf.GradientTape() as tape:
            tape.watch(z0)
            again = layer(z0, h)[0]
        np.testing.assert_allclose(again.numpy(), second[0].numpy())
        assert np.abs(tape.gradient(again, z0).numpy()).max() > 0, kind


@pytest.mark.parametrize("kind,options", [
    ("planar", {}), ("iaf", {"hidden_units": [8, 6], "activation": "tanh", "forget_bias": 2.0}),
    ("householder", {"num_householder": 2}),
    ("sylvester_o", {"num_ortho_vecs": 3, "ortho_steps": 40}),
    ("sylvester_h", {"num_householder": 3}), ("sylvester_t", {})])
def test_config_round_trip(kind, options):
    layer = posterior_flow(kind, D, 2, name="pf", **options)
    config = layer.get_config()
    assert {k: config[k] for k in options} == options
    assert type(layer) is POSTERIOR_FLOWS[kind] and config["latent_dim"] == D and config["num_flows"] == 2
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    z0, h = inputs("float32")
    layer(z0, h)
    clone(z0, h)
    clone.set_weights(layer.get_weights())
    for a, b in zip(layer(z0, h), clone(z0, h)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    defaults = posterior_flow(kind, D, 2).get_config()
    assert type(layer).from_config(defaults).get_config() == defaults


def test_saved_model_file_round_trip(tmp_path):
    z, c = keras.Input((D,)), keras.Input((H,))
    model = keras.Model([z, c], posterior_flow("sylvester_o", D, 2, num_ortho_vecs=2)(z, c))
    z0, h = inputs("float32")
    path = str(tmp_path / "flow.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(model([z0, h]), loaded([z0, h])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


@pytest.mark.parametrize("args,options,match", [
    (("radial", D, 2), {}, "kind must be one of"),
    (("planar", 0, 2), {}, "latent_dim must be an integer >= 1"),
    (("planar", D, 0), {}, "num_flows must be an integer >= 1"),
    (("planar", D, 2.5), {}, "num_flows must be an integer"),
    (("planar", D, True), {}, "num_flows must be an integer"),
    (("planar", D, 2), {"num_householder": 2}, "takes the options"),
    (("householder", D, 2), {"num_ortho_vecs": 2}, "takes the options"),
    (("sylvester_o", D, 2), {"num_ortho_vecs": D + 1}, r"num_ortho_vecs must be an integer >= 1 and <= 4"),
    (("sylvester_o", D, 2), {"num_ortho_vecs": 0}, "num_ortho_vecs"),
    (("sylvester_h", D, 2), {"num_householder": 0}, "num_householder must be an integer >= 1"),
    (("iaf", D, 2), {"hidden_units": []}, "hidden_units must be a non-empty list"),
    (("iaf", D, 2), {"hidden_units": [8, 0]}, "hidden_units must be a non-empty list"),
    (("iaf", D, 2), {"hidden_units": 8}, "hidden_units must be a non-empty list"),
])
def test_bad_arguments_are_refused(args, options, match):
    with pytest.raises(ValueError, match=match):
        posterior_flow(*args, **options)


def test_bad_inputs_are_refused():
    layer = flow("planar", dtype="float32")
    z0, h = inputs("float32")
    with pytest.raises(ValueError, match=r"z0 must be \[batch, 4\]"):
        layer(z0[:, :3], h)
    with pytest.raises(ValueError, match=r"h must be \[batch, 5\]"):
        layer(z0, h[:, :2])
