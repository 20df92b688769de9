"""The `DensityModel` contract, swept over the registry of tiny models (`tiny_models`):
every family and every class-conditional variant keeps the same public API — log_prob
in nats per image, bits/dim, labels refused or required, `training` keyword-only,
seeded uint8 samples, a config that rebuilds the model, `mixed_precision` checked —
and flows decode what they encode. Also: the registry covers `zoo.models.MODELS`,
and no test module imports another."""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tiny_models import CASES, LEVELS, NUM_CLASSES, SHAPE, TINY, args_for, is_flow, labels_for, random_images
from tiny_models import call_nats, takes_labels
from zoo.models import MODELS

FLOW_CASES = [case for case, (name, _) in CASES.items() if is_flow(name)]


def test_registry_covers_every_model():
    assert set(TINY) == set(MODELS), (
        f"tests/tiny_models.py TINY must hold one tiny config per zoo.models.MODELS entry: "
        f"missing {sorted(set(MODELS) - set(TINY))}, unknown {sorted(set(TINY) - set(MODELS))}")
    conditional = {name for name, classes in CASES.values() if classes}
    assert conditional == {name for name in MODELS if takes_labels(name)}


def test_no_test_module_imports_another():
    """Shared helpers live in helper modules (`tiny_models`, `serving`, ...), never in a
    test module: importing one runs its collection-time code and couples the files."""
    offenders = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name} imports {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert not offenders, offenders


@pytest.fixture(scope="module", params=sorted(CASES))
def model(request, tiny_model):
    return tiny_model(request.param)


def test_log_prob_is_float32_nats_per_image_deterministic_and_batch_independent(model):
    x = random_images(5, seed=1)
    args = args_for(model, x)
    lp = model.log_prob(*args).numpy()
    assert lp.shape == (5,) and lp.dtype == np.float32 and np.all(np.isfinite(lp))
    assert is_flow(type(model).__name__) or np.all(lp <= 1e-4), "an autoregressive pmf above 1"
    np.testing.assert_array_equal(model.log_prob(*args), lp)
    np.testing.assert_allclose(model.log_prob(*(a[:2] for a in args)), lp[:2], rtol=1e-5, atol=1e-5)
    assert len(np.unique(np.round(lp, 3))) > 1, "a degenerate model scores every image alike"


def test_bits_per_dim_and_call_are_negative_log_prob_over_dims_ln2(model):
    x = random_images(4, seed=2)
    args = args_for(model, x)
    bpd = model.bits_per_dim(*args).numpy()
    np.testing.assert_allclose(bpd, -model.log_prob(*args) / (model.num_dims * math.log(2.0)), rtol=1e-6)
    called = -call_nats(model, *args) / (model.num_dims * math.log(2.0))  # a VAE's call: -ELBO
    np.testing.assert_allclose(model(args if len(args) > 1 else x), called, rtol=1e-6)


def test_labels_are_refused_by_unconditional_and_required_by_conditional_models(model):
    x = random_images(2, seed=3)
    methods = ["log_prob", "bits_per_dim", *(["encode"] if is_flow(type(model).__name__) else [])]
    if not model.num_classes:
        assert model.num_classes is None
        for method in methods:
            with pytest.raises(ValueError, match="unconditional: it takes no labels"):
                getattr(model, method)(x, [0, 1])
        with pytest.raises(ValueError, match="takes no labels"):
            model.sample(2, labels=[0, 1])
        return
    assert model.num_classes == NUM_CLASSES
    for method in methods:
        with pytest.raises(ValueError, match="class-conditional: pass labels"):
            getattr(model, method)(x)
    x = random_images(NUM_CLASSES, seed=3)
    labels = np.arange(NUM_CLASSES)
    assert np.all(np.abs(model.log_prob(x, labels) - model.log_prob(x, (labels + 1) % NUM_CLASSES)) > 1e-4), \
        "labels change no likelihood"


def test_training_is_keyword_only(model):
    x = random_images(3, seed=4)
    labels = labels_for(model, 3)
    for method in (model.log_prob, model.bits_per_dim):
        with pytest.raises(TypeError):
            method(x, labels, True)


def test_samples_are_seeded_uint8_images_in_range(model):
    labels = labels_for(model, 4)
    s = model.sample(4, labels=labels, temperature=0.8, seed=4).numpy()
    assert s.shape == (4, *SHAPE) and s.dtype == np.uint8 and s.max() < LEVELS
    np.testing.assert_array_equal(model.sample(4, labels=labels, temperature=0.8, seed=4), s)
    assert not np.array_equal(model.sample(4, labels=labels, temperature=0.8, seed=5), s)
    with pytest.raises(TypeError):
        model.sample(4, 0.8)  # temperature is keyword-only
    if model.num_classes:  # an int is every image's class
        np.testing.assert_array_equal(model.sample(2, labels=1, seed=6),
                                      model.sample(2, labels=[1, 1], seed=6))


def test_config_rebuilds_the_same_model(model):
    copy = type(model).from_config(model.get_config()).build_for_images()
    assert copy.get_config() == model.get_config()
    copy.set_weights(model.get_weights())
    args = args_for(model, random_images(3, seed=5))
    np.testing.assert_array_equal(copy.log_prob(*args), model.log_prob(*args))


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_family_takes_mixed_precision_and_checks_it(name):
    config = dict(image_shape=SHAPE, num_levels=LEVELS, **TINY[name])
    for precision in ("bfloat16", "float16"):
        assert MODELS[name](**config, mixed_precision=precision).get_config()["mixed_precision"] == precision
    with pytest.raises(ValueError, match="mixed_precision must be None, 'bfloat16' or 'float16'"):
        MODELS[name](**config, mixed_precision="int8")


@pytest.mark.parametrize("case", FLOW_CASES)
def test_flows_decode_what_they_encode(tiny_model, case):
    model = tiny_model(case)
    x = random_images(6, seed=6)
    x[0], x[1] = 0, LEVELS - 1
    labels = labels_for(model, 6)
    z = model.encode(x, labels)
    assert z.shape == (6, *SHAPE) and z.dtype == tf.float32
    out = model.decode(z, labels)
    assert out.dtype == tf.uint8
    np.testing.assert_array_equal(out, x)


# What each capability promises beyond the contract (`DensityModel.capabilities`).
CAPABILITIES = {"latent": ("encode", "decode", "latent_shape"), "elbo": ("elbo",),
                "interpolate": ("interpolate",), "autoregressive": ("cached_pass",)}


def test_capabilities_are_declared_truthfully_and_kept(model):
    capabilities = type(model).capabilities
    assert isinstance(capabilities, frozenset) and capabilities <= set(CAPABILITIES), capabilities
    for capability, methods in CAPABILITIES.items():
        for method in methods:
            assert hasattr(model, method) == (capability in capabilities), (
                f"{type(model).__name__}: has {method} = {hasattr(model, method)}, declares {capability!r} = "
                f"{capability in capabilities}")
    x = random_images(4, seed=7)
    labels = labels_for(model, 4)
    if "latent" in capabilities:
        z = model.encode(x, labels)
        assert z.shape == (4, *model.latent_shape) and z.dtype == tf.float32
        decoded = model.decode(z, labels)
        assert decoded.dtype == tf.uint8 and decoded.shape == x.shape
    if "elbo" in capabilities:  # a bound below the importance-weighted one, on average
        assert np.mean(model.elbo(x, labels)) < np.mean(model.log_prob(*args_for(model, x)))
    if "interpolate" in capabilities:  # the path's ends decode the two images' latents
        label = None if labels is None else int(labels[0])
        pair_labels = None if labels is None else np.full([2], label)
        path = model.interpolate(x[0], x[1], num=3, label=label)
        assert path.shape == (3, *SHAPE) and path.dtype == tf.uint8
        np.testing.assert_array_equal(path[::2], model.decode(model.encode(x[:2], pair_labels), pair_labels))
