"""MAF and IAF bijectors (invertibility, brute-force log-dets, the MADE's loop against
TFP's, orders across layers) and the MAF model (MoG base, the dequantization bound,
sampling, labels, saving, SavedModel export without zoo, the smoke preset)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import zoo
from reproduce.__main__ import main
from serving import serve_without_zoo
from zoo import bijectors as zb
from zoo.layers import MADE
from zoo.models import MAF
from zoo.distributions import mixture_log_prob

tfb = tfp.bijectors
D = 5
SHAPE = (2, 3, 1)


def randomized_made(order="natural", context_size=None, seed=0, num_params=2):
    made = MADE(num_params, (16, 12), input_order=order, context_size=context_size,
                activation="tanh", seed=seed)
    made(tf.zeros([1, D]), **({"context": tf.zeros([1, context_size])} if context_size else {}))
    rng = np.random.default_rng(seed)
    for w in made.weights:
        w.assign(rng.normal(0, 0.4, w.shape))
    return made


def brute_force_log_det(fn, x):
    """log|det d fn(x) / dx| per row of `x [b, D]`, from the full Jacobian in float64."""
    x = tf.constant(x, tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = fn(x)
    jac = tf.cast(tape.batch_jacobian(y, x, experimental_use_pfor=False), tf.float64)
    return tf.linalg.slogdet(jac)[1].numpy()


def flows(tfp_loop=False):
    """name -> zero-argument factory of a bijector on `[b, D]` events (fresh per call)."""
    made = randomized_made("random", seed=1)
    scale = tf.constant(np.linspace(0.5, 2.0, D), tf.float32)
    cond = randomized_made("reversed", context_size=3, seed=2)
    context = tf.constant(np.random.default_rng(3).normal(size=(4, 3)), tf.float32)
    return {
        "maf": lambda: zb.masked_autoregressive_flow(made, scale=scale, tfp_loop=tfp_loop),
        "iaf": lambda: zb.inverse_autoregressive_flow(made, scale=scale, tfp_loop=tfp_loop),
        "unbounded": lambda: zb.masked_autoregressive_flow(made, tfp_loop=tfp_loop),
        "context": lambda: zb.masked_autoregressive_flow(cond, context, scale, tfp_loop=tfp_loop),
    }


def points(seed=0):
    return np.random.default_rng(seed).normal(size=(4, D)).astype(np.float32)


@pytest.mark.parametrize("tfp_loop", [False, True])
@pytest.mark.parametrize("name", ["maf", "iaf", "unbounded", "context"])
def test_inverse_undoes_forward(name, tfp_loop):
    make = flows(tfp_loop)[name]
    x = points()
    y = make().forward(x)
    np.testing.assert_allclose(make().inverse(y), x, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(make().forward(make().inverse(x)), x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["maf", "iaf", "context"])
def test_made_loop_equals_tfp_loop(name):
    x = points(1)
    ours, theirs = flows(False)[name], flows(True)[name]
    np.testing.assert_allclose(ours().forward(x), theirs().forward(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours().inverse(x), theirs().inverse(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["maf", "iaf", "unbounded", "context"])
def test_log_dets_equal_the_brute_force_jacobian(name):
    make = flows()[name]
    x = points(2)
    fldj = make().forward_log_det_jacobian(x, event_ndims=1).numpy()
    np.testing.assert_allclose(fldj, brute_force_log_det(lambda v: make().forward(v), x),
                               rtol=1e-4, atol=1e-4)
    ildj = make().inverse_log_det_jacobian(x, event_ndims=1).numpy()
    np.testing.assert_allclose(ildj, brute_force_log_det(lambda v: make().inverse(v), x),
                               rtol=1e-4, atol=1e-4)


def test_log_scale_is_bounded_by_the_scale():
    made = randomized_made(seed=4)
    for w in made.out.weights:
        w.assign(w * 100.0)  # raw log-scales far beyond the bound
    scale = tf.constant([0.5, 1.0, 1.5, 2.0, 0.1])
    _, log_scale = zb.autoregressive_affine(made, scale=scale)(tf.constant(points(3)))
    assert np.all(np.abs(log_scale.numpy()) <= scale.numpy() + 1e-6)


def test_event_ndims_three_flattens_the_image():
    made = randomized_made(seed=5)
    x = np.random.default_rng(6).normal(size=(3, 1, 1, D)).astype(np.float32)
    image = zb.masked_autoregressive_flow(made, event_ndims=3)
    vector = zb.masked_autoregressive_flow(made, event_ndims=1)
    np.testing.assert_allclose(image.inverse(x).numpy().reshape(3, D), vector.inverse(x.reshape(3, D)),
                               rtol=1e-6)
    np.testing.assert_allclose(image.inverse_log_det_jacobian(x, event_ndims=3),
                               vector.inverse_log_det_jacobian(x.reshape(3, D), event_ndims=1), rtol=1e-6)


# ---- the model ---------------------------------------------------------------

def randomized(model, seed=0):
    """Random MADE weights (the zero-initialized outputs would make each layer the
    identity), bounds away from one and running statistics away from (0, 1)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "float" not in str(w.dtype):
            continue
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, w.shape))
        elif "moving_mean" in w.path:
            w.assign(rng.normal(0, 0.3, w.shape))
        elif "log_scale_bound" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape))
        else:
            w.assign(rng.normal(0, 0.2, w.shape))
    return model


def small(levels=17, **kwargs):
    config = dict(num_layers=2, hidden_units=(16, 16), alpha=0.05, eval_draws=2, seed=3)
    config.update(kwargs)
    return randomized(MAF(SHAPE, levels, **config).build_for_images())


def images(n=5, levels=17, seed=0):
    return np.random.default_rng(seed).integers(0, levels, (n, *SHAPE)).astype(np.uint8)


@pytest.fixture(scope="module")
def model():
    return small()


@pytest.fixture(scope="module")
def mog():
    return small(base="mog", num_components=3)


@pytest.fixture(scope="module")
def conditional():
    return small(num_classes=3, base="mog", num_components=2, dropout=0.2)


def test_whole_flow_log_det_equals_brute_force_jacobian(model):
    v = (images(3).astype(np.float32) + np.random.default_rng(1).uniform(size=(3, *SHAPE))).astype(np.float32)
    flat = v.reshape(3, -1)

    def fn(x):
        return tf.reshape(model.bijector().forward(tf.reshape(x, [-1, *SHAPE])), [-1, 6])
    fldj = model.bijector().forward_log_det_jacobian(v, event_ndims=3).numpy()
    np.testing.assert_allclose(fldj, brute_force_log_det(fn, flat), rtol=1e-4, atol=1e-3)


def test_layers_reverse_the_order_and_compose_to_a_full_jacobian():
    model = small(hidden_units=(24, 24), activation="tanh")  # no dead ReLU hides a path
    assert [m.input_order for m in model.mades] == ["natural", "reversed"]
    v = tf.constant(np.random.default_rng(2).normal(size=(2, 6)), tf.float32)

    def layer(k):
        return zb.masked_autoregressive_flow(model.mades[k], scale=model.log_scale_bounds[k].value)

    def jac(fn):
        with tf.GradientTape() as tape:
            tape.watch(v)
            y = fn(v)
        return np.abs(tape.batch_jacobian(y, v).numpy()).max(axis=0) > 1e-7
    first, second = jac(lambda x: layer(0).inverse(x)), jac(lambda x: layer(1).inverse(x))
    np.testing.assert_array_equal(first, np.tril(np.ones((6, 6), bool)))  # natural: lower
    np.testing.assert_array_equal(second, np.triu(np.ones((6, 6), bool)))  # reversed: upper
    assert jac(lambda x: layer(1).inverse(layer(0).inverse(x))).all()  # every z sees every x


def test_mixture_log_prob_matches_numpy():
    rng = np.random.default_rng(4)
    params = rng.normal(size=(3, 4, 6)).astype(np.float32)
    z = rng.normal(size=(3, 4)).astype(np.float32)
    logits, loc, log_scale = np.split(params.astype(np.float64), 3, axis=-1)
    weights = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    sigma = np.exp(log_scale)
    density = (weights * np.exp(-0.5 * ((z[..., None] - loc) / sigma) ** 2)
               / (np.sqrt(2 * np.pi) * sigma)).sum(-1)
    np.testing.assert_allclose(mixture_log_prob(params, z), np.log(density).sum(-1), rtol=1e-5)


def test_mog_base_is_a_density_over_two_dimensions():
    """exp(base_log_prob) integrates to one over a grid (D = 2)."""
    m = randomized(MAF((1, 2, 1), 17, num_layers=1, hidden_units=(8,), base="mog",
                       num_components=3, seed=1).build_for_images(), seed=2)
    grid = np.linspace(-12, 12, 481, dtype=np.float32)
    z = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 1, 2, 1)
    mass = np.exp(m.base_log_prob(z).numpy()).sum() * (grid[1] - grid[0]) ** 2
    np.testing.assert_allclose(mass, 1.0, atol=2e-3)


def test_log_prob_is_the_bound_averaged_over_fixed_draws(mog):
    x = images(4)
    lp = mog.log_prob(x).numpy()
    assert lp.shape == (4,) and lp.dtype == np.float32 and np.all(np.isfinite(lp))
    np.testing.assert_array_equal(mog.log_prob(x).numpy(), lp)
    u = mog._noise(4, training=False).numpy()
    v = (x[None].astype(np.float32) + u).reshape(-1, *SHAPE)
    flow = mog.bijector()
    z = flow.forward(v)
    by_hand = (mog.base_log_prob(z) + flow.forward_log_det_jacobian(v, event_ndims=3)).numpy()
    np.testing.assert_allclose(lp, by_hand.reshape(2, 4).mean(0), rtol=1e-5)
    np.testing.assert_allclose(mog.bits_per_dim(x), -lp / (6 * np.log(2)), rtol=1e-6)
    a, b = mog.log_prob(x, training=True).numpy(), mog.log_prob(x, training=True).numpy()
    assert np.all(np.isfinite(a)) and not np.allclose(a, b)  # fresh noise, batch statistics


@pytest.mark.parametrize("fixture", ["model", "mog"])
def test_decode_inverts_encode_and_samples_are_seeded(fixture, request):
    m = request.getfixturevalue(fixture)
    x = images(6)
    x[0], x[1] = 0, 16
    z = m.encode(x)
    assert z.shape == (6, *SHAPE) and z.dtype == tf.float32
    np.testing.assert_array_equal(m.decode(z).numpy(), x)
    s = m.sample(5, temperature=0.8, seed=4).numpy()
    assert s.shape == (5, *SHAPE) and s.dtype == np.uint8 and s.max() < 17
    np.testing.assert_array_equal(m.sample(5, temperature=0.8, seed=4), s)
    assert not np.array_equal(m.sample(5, temperature=0.8, seed=5), s)
    naive = m.sample(5, temperature=0.8, seed=4, method="naive").numpy()
    assert np.mean(naive != s) <= 0.05  # the same draw; float rounding may move a rare pixel


def test_bfloat16_hidden_layers_keep_the_likelihood_float32_and_exact():
    m = small(mixed_precision="bfloat16", base="mog", num_components=2)
    x = images(4)
    assert m.mades[0].hidden[0].compute_dtype == "bfloat16"
    assert m.log_prob(x, training=True).dtype == tf.float32 and m.log_prob(x).dtype == tf.float32
    np.testing.assert_array_equal(m.decode(m.encode(x)), x)


def test_class_conditional_labels_matter_and_are_required(conditional):
    x, labels = images(4), np.array([0, 1, 2, 1])
    lp = conditional.log_prob(x, labels).numpy()
    assert np.all(np.isfinite(lp))
    assert not np.allclose(lp, conditional.log_prob(x, np.zeros(4, np.int32)))
    np.testing.assert_array_equal(conditional.decode(conditional.encode(x, labels), labels), x)
    s = conditional.sample(4, labels=labels, temperature=0.7, seed=1)
    assert s.shape == (4, *SHAPE)
    np.testing.assert_array_equal(conditional.sample(4, labels=labels, temperature=0.7, seed=1), s)
    with pytest.raises(ValueError, match="class-conditional"):
        conditional.log_prob(x)
    with pytest.raises(ValueError, match="labels"):
        conditional.log_prob(x, np.array([0, 1, 3, 1]))
    with pytest.raises(ValueError, match="unconditional"):
        small().log_prob(x, labels)


@pytest.mark.parametrize("kwargs,match", [
    ({"num_layers": -1}, "num_layers"), ({"base": "flow"}, "base"),
    ({"num_components": 0}, "num_components"), ({"num_classes": 0}, "num_classes"),
    ({"alpha": 0.5}, "alpha"), ({"eval_draws": 0}, "eval_draws"), ({"dropout": 1.0}, "dropout"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MAF(SHAPE, 17, **kwargs)


def test_keras_file_round_trip_in_safe_mode(conditional, tmp_path):
    path = tmp_path / "maf.keras"
    conditional.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, MAF) and loaded.get_config() == conditional.get_config()
    x, labels = images(3), np.array([2, 0, 1])
    np.testing.assert_array_equal(loaded.log_prob(x, labels), conditional.log_prob(x, labels))
    np.testing.assert_array_equal(loaded.sample(3, labels=labels, seed=2),
                                  conditional.sample(3, labels=labels, seed=2))


def test_saved_model_serves_without_zoo_with_a_dynamic_batch(conditional, tmp_path):
    """A class-conditional MAF with the MoG base: every signature, two batch sizes."""
    x, labels = images(4), np.array([0, 2, 1, 1], np.int32)
    z = conditional.encode(x, labels).numpy()
    out = serve_without_zoo(zoo.export(conditional, tmp_path / "saved"), {
        "lp": ("log_prob", {"images": x, "labels": labels}),
        "lp1": ("log_prob", {"images": x[:1], "labels": labels[:1]}),
        "z": ("encode", {"images": x, "labels": labels}),
        "decoded": ("decode", {"z": z, "labels": labels}),
        "sample": ("sample", {"labels": labels, "temperature": np.float32(0.7), "seed": np.int64(3)}),
    }, tmp_path)
    np.testing.assert_allclose(out["lp"]["log_prob"], conditional.log_prob(x, labels), atol=1e-3)
    np.testing.assert_allclose(out["lp1"]["log_prob"], conditional.log_prob(x[:1], labels[:1]), atol=1e-3)
    np.testing.assert_allclose(out["z"]["z"], z, atol=1e-4)
    np.testing.assert_array_equal(out["decoded"]["images"], x)
    np.testing.assert_array_equal(out["sample"]["images"],
                                  conditional.sample(4, labels=labels, temperature=0.7, seed=3))


def test_smoke_preset_through_the_driver(tmp_path):
    record = main(["maf", "--preset", "smoke", "--out", str(tmp_path), "--epochs", "1"])
    assert record["dataset"] == "digits" and record["model"] == "MAF"
    assert np.isfinite(record["test_bits_per_dim"])
    for png in ["maf-smoke-digits.png", "maf-smoke-digits-temperatures.png"]:
        assert (tmp_path / "figures" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
