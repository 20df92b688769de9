"""The VAE (`zoo.models.VAE`): its estimators against the exact likelihood of a tiny model
(quadrature over a 1- or 2-dimensional latent, on all 16 binary 2x2 images), for every
posterior flow and prior; determinism, chunking, the per-call number of importance
samples, KL warm-up, the networks' shapes, save/load, the SavedModel served without zoo,
bad input, and a smoke run of `python -m reproduce vae_flows` with its variant flags."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp

import zoo
from reproduce import vae_flows
from reproduce.runs import Run
from reproduce.__main__ import main
from serving import serve_without_zoo
from tiny_models import random_images, tiny
from zoo.models import VAE
from zoo.models import vae as vae_module

# Every binary 2x2 image: [16, 2, 2, 1].
ALL_IMAGES = np.array([[(i >> b) & 1 for b in range(4)] for i in range(16)], np.uint8).reshape(16, 2, 2, 1)
FLOW_KINDS = [k for k in vae_module.POSTERIORS if k != "gaussian"]


def binary_vae(**overrides):
    """A tiny VAE over binary 2x2 images (Bernoulli decoder), random weights."""
    return tiny("VAE", (2, 2, 1), 2, **{"hidden_units": (8, 8), "importance_samples": 5000, **overrides})


def exact_log_prob(model, limit, step):
    """log p(x) of `ALL_IMAGES` by quadrature: sum over a grid of z in [-limit, limit]^d of
    p(x | z) p(z) step^d, float64."""
    d = model.latent_dim
    axis = np.arange(-limit, limit + step / 2, step)
    grid = np.stack(np.meshgrid(*[axis] * d, indexing="ij"), -1).reshape(-1, d).astype(np.float32)
    logits = model._logits(tf.constant(grid)).numpy()[..., 0].reshape(len(grid), 4).astype(np.float64)
    x = ALL_IMAGES.reshape(16, 1, 4).astype(np.float64)
    log_px = -(x * np.logaddexp(0, -logits[None]) + (1 - x) * np.logaddexp(0, logits[None])).sum(-1)
    log_pz = model.prior_log_prob(tf.constant(grid)).numpy().astype(np.float64)
    return logsumexp(log_px + log_pz[None], axis=1) + d * np.log(step)


def test_importance_weighted_bound_matches_the_exact_likelihood_by_quadrature():
    model = binary_vae(latent_dim=1)
    exact = exact_log_prob(model, 10.0, 0.002)
    assert abs(np.exp(exact).sum() - 1.0) < 1e-4, "the 16 exact probabilities must sum to 1"
    bound = model.log_prob(ALL_IMAGES).numpy()
    assert bound.dtype == np.float32 and bound.shape == (16,)
    np.testing.assert_allclose(bound, exact, rtol=0, atol=0.05)
    elbo = model.elbo(ALL_IMAGES, num_samples=5000).numpy()
    assert np.all(elbo < exact), "the ELBO (averaged over 5000 draws) lies below log p(x)"
    assert np.mean(bound - elbo) > 0.005, "the importance-weighted bound is tighter than the ELBO"


@pytest.mark.parametrize("kind, prior", [("gaussian", "realnvp"), ("gaussian", "maf"),
                                         *[(kind, "normal") for kind in FLOW_KINDS]])
def test_every_posterior_flow_and_prior_keeps_elbo_below_the_bound_below_log_p(kind, prior):
    model = binary_vae(latent_dim=2, posterior=kind, num_flows=2, prior=prior, prior_flows=2,
                       prior_hidden_units=(16,))
    exact = exact_log_prob(model, 8.0, 0.04)
    assert abs(np.exp(exact).sum() - 1.0) < 1e-4, "the 16 exact probabilities must sum to 1"
    bound = model.log_prob(ALL_IMAGES).numpy()
    elbo = model.elbo(ALL_IMAGES, num_samples=5000).numpy()
    assert np.all(elbo <= exact + 1e-3) and np.all(elbo <= bound + 1e-3)
    assert np.all(bound <= exact + 0.05), "the bound exceeds log p(x) by more than its noise"


def test_estimators_are_deterministic_batch_independent_and_seeded():
    model = binary_vae(latent_dim=2, posterior="sylvester_o", num_flows=2, importance_samples=64)
    lp, elbo = model.log_prob(ALL_IMAGES).numpy(), model.elbo(ALL_IMAGES).numpy()
    np.testing.assert_array_equal(model.log_prob(ALL_IMAGES), lp)
    np.testing.assert_array_equal(model.elbo(ALL_IMAGES), elbo)
    np.testing.assert_allclose(model.log_prob(ALL_IMAGES[5:8]), lp[5:8], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(model.elbo(ALL_IMAGES[5:8]), elbo[5:8], rtol=1e-6, atol=1e-5)
    z, drawn = model.encode(ALL_IMAGES), model.encode(ALL_IMAGES, sample=True)
    np.testing.assert_allclose(model.encode(ALL_IMAGES[5:8]), z[5:8], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.encode(ALL_IMAGES[5:8], sample=True), drawn[5:8], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(model.encode(ALL_IMAGES, sample=True, seed=5),
                                  model.encode(ALL_IMAGES, sample=True, seed=5))
    assert not np.allclose(model.encode(ALL_IMAGES, sample=True, seed=5), drawn), "the seed picks the draw"
    h, mean, _ = model._posterior(tf.constant(ALL_IMAGES, tf.int32), training=False)
    np.testing.assert_allclose(z, model.flow.bijector(h).forward(mean), rtol=1e-5, atol=1e-6)
    assert not np.allclose(z, mean), "encode's z is the posterior mean through the flows"
    assert not np.allclose(drawn, z), "sample=True draws z0 instead of taking its mean"
    reseeded = VAE.from_config({**model.get_config(), "seed": 4}).build_for_images()
    reseeded.set_weights(model.get_weights())
    assert not np.allclose(reseeded.log_prob(ALL_IMAGES), lp), "the seed picks the draws"


def test_chunks_give_the_one_chunk_number_and_more_samples_tighten_the_bound():
    model = binary_vae(latent_dim=2, posterior="planar", num_flows=2, importance_samples=300)
    one_chunk = model.log_prob(ALL_IMAGES).numpy()  # 16 images x 300 draws <= chunk_size 2048
    chunked = VAE.from_config({**model.get_config(), "chunk_size": 70}).build_for_images()
    chunked.set_weights(model.get_weights())
    np.testing.assert_allclose(chunked.log_prob(ALL_IMAGES), one_chunk, rtol=0, atol=1e-5)
    np.testing.assert_allclose(chunked.elbo(ALL_IMAGES, num_samples=300), model.elbo(ALL_IMAGES, num_samples=300),
                               rtol=0, atol=1e-5)
    by_k = [model.log_prob(ALL_IMAGES, importance_samples=k).numpy().mean() for k in (1, 10, 300)]
    assert by_k[0] < by_k[1] < by_k[2], f"the bound does not tighten with K: {by_k}"
    assert model.importance_samples == 300  # the per-call K changes no setting


def test_kl_warmup_ramps_beta_and_weighs_the_kl_part_of_the_training_loss():
    model = binary_vae(latent_dim=2, kl_warmup=4)
    images = tf.constant(ALL_IMAGES, tf.int32)
    for step, beta in enumerate([0.25, 0.5, 0.75, 1.0, 1.0], start=1):
        objective = model.log_prob(ALL_IMAGES, training=True).numpy()
        assert int(model.step_counter.numpy()) == step and float(model.kl_beta) == pytest.approx(beta)
        eps = tf.random.stateless_normal([1, 16, 2], seed=tf.constant([model.seed, step * 1024], tf.int64))
        h, mean, log_var = model._posterior(images, training=True)
        log_px, kl_part = model._log_weights(images, h, mean, log_var, eps, training=True, parts=True)
        np.testing.assert_allclose(objective, (log_px + beta * kl_part)[0], rtol=1e-5, atol=1e-4)
    # Keras' loss is minus it in bits/dim; evaluation is the beta = 1 ELBO.
    np.testing.assert_allclose(model(ALL_IMAGES), -model.elbo(ALL_IMAGES) / (4 * np.log(2.0)), rtol=1e-6)
    assert float(binary_vae(latent_dim=2).kl_beta) == 1.0


def test_fit_trains_the_elbo_and_the_step_counter_resumes_from_the_weights():
    model = binary_vae(latent_dim=2, posterior="iaf", num_flows=1, kl_warmup=10,
                       posterior_options={"hidden_units": [8]})
    before = -model.elbo(ALL_IMAGES, num_samples=200).numpy().mean()
    model.compile(optimizer=keras.optimizers.Adamax(0.05))
    data = np.tile(ALL_IMAGES[[0, 3, 5, 15]], (8, 1, 1, 1))
    model.fit(data, epochs=30, batch_size=32, verbose=0, shuffle=False)
    assert int(model.step_counter.numpy()) == 30 and float(model.kl_beta) == 1.0
    after = -model.elbo(ALL_IMAGES[[0, 3, 5, 15]], num_samples=200).numpy().mean()
    assert after < before - 0.5, f"training did not lower -ELBO: {before:.3f} -> {after:.3f}"


def test_networks_auto_conv_for_28x28_and_mlp_for_8x8():
    conv = VAE((28, 28, 1), 2, latent_dim=8, conv_filters=(4, 4, 8, 8, 8, 16), deconv_filters=(8, 8, 4, 4, 4, 4),
               importance_samples=4, seed=1)
    assert conv.network_kind == "conv" and conv.likelihood == "bernoulli"
    x = random_images(3, 2, (28, 28, 1))
    h, mean, _ = conv._posterior(tf.constant(x, tf.int32), training=False)
    assert h.shape == (3, 16) and mean.shape == (3, 8)
    assert conv._logits(mean).shape == (3, 28, 28, 1, 1)
    assert conv.sample(2, seed=1).numpy().max() <= 1 and conv.log_prob(x).shape == (3,)
    paper = VAE((28, 28, 1), 2, latent_dim=64, seed=1)
    assert paper.encoder.filters == [32, 32, 64, 64, 64, 256] and paper.encoder.strides == [1, 2, 1, 2, 1, 1]
    paper.build_for_images()
    assert [c.conv.kernel_size for c in paper.encoder.convs] == [(5, 5)] * 5 + [(7, 7)]
    assert [c.conv.kernel_size for c in paper.decoder.convs] == [(7, 7)] + [(5, 5)] * 5
    mlp = VAE((8, 8, 1), 17, seed=1)
    assert mlp.network_kind == "mlp" and mlp.likelihood == "categorical"
    mlp.build_for_images()
    assert [layer.units for layer in mlp.encoder.dense] == [256, 256]
    assert mlp._logits(tf.zeros([2, 16])).shape == (2, 8, 8, 1, 17)


def test_sample_encode_decode():
    model = tiny("VAE", (4, 4, 1), 3, prior="realnvp", prior_hidden_units=(8,))
    s = model.sample(5, temperature=0.5, seed=3).numpy()
    assert s.dtype == np.uint8 and s.shape == (5, 4, 4, 1) and s.max() < 3
    x = random_images(4, 3, (4, 4, 1))
    z = model.encode(x)
    _, mean, _ = model._posterior(tf.constant(x, tf.int32), training=False)
    np.testing.assert_array_equal(z, mean)  # a Gaussian posterior: z is q(z | x)'s mean
    assert z.dtype == tf.float32
    decoded = model.decode(z).numpy()
    mode = np.argmax(model._logits(mean).numpy(), axis=-1)
    np.testing.assert_array_equal(decoded, mode)  # the most probable image, not a draw
    binary = binary_vae(latent_dim=2)
    assert set(np.unique(binary.sample(64, seed=1))) == {0, 1}


def test_logistic_mixture_decoder_sums_to_one_and_decodes_each_pixels_mode():
    model = tiny("VAE", (2, 1, 1), 3, decoder="logistic_mixture", nr_logistic_mix=2)
    assert model.likelihood == "logistic_mixture"
    z = tf.random.stateless_normal([4, model.latent_dim], seed=[1, 2]) * 3.0
    every = np.array([[[[a]], [[b]]] for a in range(3) for b in range(3)], np.int32)  # all 9 images
    log_px = np.stack([model._log_likelihood(tf.constant(every), tf.repeat(z[i:i + 1], 9, axis=0)).numpy()
                       for i in range(4)])
    np.testing.assert_allclose(np.exp(log_px).sum(axis=1), 1.0, rtol=1e-5)  # p(x | z) is a distribution
    best = every[np.argmax(log_px, axis=1)]  # one colour: the joint mode is each pixel's mode
    np.testing.assert_array_equal(model.decode(z.numpy()).numpy(), best)
    s = model.sample(64, seed=3).numpy()
    assert s.dtype == np.uint8 and s.shape == (64, 2, 1, 1) and set(np.unique(s)) == {0, 1, 2}
    np.testing.assert_array_equal(model.sample(64, seed=3), s)


@pytest.mark.parametrize("overrides", [dict(posterior="sylvester_o", prior="maf"),
                                       dict(posterior="iaf", prior="realnvp"),
                                       dict(posterior="householder", mixed_precision="bfloat16"),
                                       dict(decoder="logistic_mixture", nr_logistic_mix=2)])
def test_keras_file_round_trip_in_safe_mode(tmp_path, overrides):
    model = tiny("VAE", (4, 4, 1), 3, num_flows=2, prior_hidden_units=(8,), prior_flows=2, **overrides)
    model.log_prob(random_images(2, 3, (4, 4, 1)), training=True)  # the step counter moves
    path = tmp_path / "vae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is VAE and loaded.get_config() == model.get_config()
    assert int(loaded.step_counter.numpy()) == 1
    x = random_images(5, 3, (4, 4, 1), seed=2)
    np.testing.assert_array_equal(loaded.log_prob(x), model.log_prob(x))
    np.testing.assert_array_equal(loaded.elbo(x), model.elbo(x))
    np.testing.assert_array_equal(loaded.sample(3, seed=2), model.sample(3, seed=2))


def test_saved_model_serves_elbo_log_prob_encode_decode_and_sample_without_zoo(tmp_path):
    model = tiny("VAE", (4, 4, 1), 3, posterior="sylvester_h", num_flows=2, prior="maf", prior_hidden_units=(8,))
    path = zoo.export(model, tmp_path / "vae")
    x = random_images(5, 3, (4, 4, 1), seed=4)
    z = model.encode(x)
    seeded = {"n": np.int32(3), "temperature": np.float32(0.8), "seed": np.int64(2)}
    out = serve_without_zoo(path, {
        "lp": ("log_prob", {"images": x}), "elbo": ("elbo", {"images": x}), "elbo2": ("elbo", {"images": x[:2]}),
        "enc": ("encode", {"images": x}), "dec": ("decode", {"z": z.numpy()}), "s": ("sample", seeded),
        "default": ("serving_default", {"images": x})}, tmp_path)
    np.testing.assert_allclose(out["lp"]["log_prob"], model.log_prob(x), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["default"]["log_prob"], model.log_prob(x), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["elbo"]["elbo"], model.elbo(x), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["elbo2"]["elbo"], model.elbo(x[:2]), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["enc"]["z"], z, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out["dec"]["images"], model.decode(z))
    np.testing.assert_array_equal(out["s"]["images"], model.sample(3, temperature=0.8, seed=2))


@pytest.mark.parametrize("kwargs, match", [
    (dict(posterior="radial"), "posterior must be one of"),
    (dict(prior="vamp"), "prior must be one of"),
    (dict(network="resnet"), "network must be one of"),
    (dict(decoder="logistic"), "decoder must be one of"),
    (dict(decoder="bernoulli"), "num_levels must be 2"),
    (dict(latent_dim=0), "latent_dim must be >= 1"),
    (dict(decoder="logistic_mixture", nr_logistic_mix=0), "nr_logistic_mix must be an integer >= 1"),
    (dict(latent_dim=1, prior="realnvp"), "latent_dim must be >= 2"),
    (dict(importance_samples=0), "importance_samples must be an integer >= 1"),
    (dict(chunk_size=0), "chunk_size must be an integer >= 1"),
    (dict(kl_warmup=-1), "kl_warmup must be >= 0"),
    (dict(network="conv"), "divisible by 4"),
    (dict(posterior="planar", num_flows=0), "num_flows must be >= 1"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAE((6, 6, 1), 3, **kwargs)


def test_bad_arguments_and_latents_are_refused():
    model = tiny("VAE", (4, 4, 1), 3)
    x = random_images(2, 3, (4, 4, 1))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="importance_samples must be a positive integer"):
            model.log_prob(x, importance_samples=bad)
        with pytest.raises(ValueError, match="num_samples must be a positive integer"):
            model.elbo(x, num_samples=bad)
    with pytest.raises(ValueError, match="unconditional: it takes no labels"):
        model.elbo(x, [0, 1])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model.elbo(np.full((2, 4, 4, 1), 3, np.uint8))
    for latents, match in [(np.zeros((2, 3), np.int32), "float latents"),
                           (np.zeros((2, 4), np.float32), r"shape \[batch, 3\]"),
                           (np.zeros((2, 4, 4, 1), np.float32), r"shape \[batch, 3\]"),
                           (np.full((2, 3), np.nan, np.float32), "finite")]:
        with pytest.raises(ValueError, match=match):
            model.decode(latents)


def test_paper_file_lists_the_models_posteriors_and_priors():
    assert vae_flows.POSTERIORS == vae_module.POSTERIORS and vae_flows.PRIORS == vae_module.PRIORS
    run = Run("vae_flows", "cpu", flags={"posterior": "sylvester_o", "prior": "normal"})
    assert run.pretrained_name == "vae-sylvester_o-digits"
    assert Run("vae_flows", "cpu", flags={"prior": "maf"}).pretrained_name == "vae-gaussian-maf-digits"
    assert Run("vae_flows", "cpu", "binarized_mnist", {"posterior": "iaf"}).published["nats"] == 82.02


def test_smoke_run_with_variant_flags_writes_its_own_record_and_the_vae_table(tmp_path):
    record = main(["vae_flows", "--preset", "smoke", "--out", str(tmp_path), "--epochs", "1",
                   "--posterior", "planar", "--prior", "realnvp"])
    path = tmp_path / "runs" / "vae_flows" / "smoke-planar-realnvp-digits.json"
    saved = json.loads(path.read_text())
    assert saved == json.loads(json.dumps(record)) and saved["variant"] == "planar-realnvp"
    assert saved["config"]["posterior"] == "planar" and saved["config"]["prior"] == "realnvp"
    assert saved["importance_samples"] == 16 and np.isfinite(saved["test_nll_nats"])
    assert saved["test_nll_nats"] < saved["test_nats"] + 1.0, "the bound with 16 samples beats the -ELBO"
    for png in ["", "-curve", "-reconstructions"]:
        assert (tmp_path / "figures" / f"vae_flows-smoke-planar-realnvp-digits{png}.png").is_file()
    table = (tmp_path / "README.md").read_text()
    assert "## VAEs" in table and "| planar | realnvp | digits | smoke |" in table
    assert f"{saved['test_nll_nats']:.2f} (16)" in table
    with pytest.raises(SystemExit, match="invalid choice: 'radial'"):
        main(["vae_flows", "--preset", "smoke", "--out", str(tmp_path), "--posterior", "radial"])
    with pytest.raises(SystemExit, match="unrecognized arguments: --posterior"):
        main(["arm", "--preset", "smoke", "--out", str(tmp_path), "--posterior", "planar"])


def test_posterior_options_by_kind_give_each_posterior_its_own():
    by_kind = {"sylvester_o": {"num_ortho_vecs": 2}, "iaf": {"hidden_units": [8]}}
    sylvester = binary_vae(latent_dim=4, posterior="sylvester_o", num_flows=1, posterior_options=by_kind)
    assert sylvester.flow.num_vectors == 2
    iaf = binary_vae(latent_dim=4, posterior="iaf", num_flows=1, posterior_options=by_kind)
    assert iaf.flow.options["hidden_units"] == [8]
    planar = binary_vae(latent_dim=4, posterior="planar", num_flows=1, posterior_options=by_kind)
    assert planar.flow.options == {}, "a kind the mapping does not name takes its defaults"
    assert sylvester.get_config()["posterior_options"] == by_kind
    with pytest.raises(ValueError, match="unknown \\['num_ortho_vecs'\\]"):
        binary_vae(latent_dim=4, posterior="planar", num_flows=1, posterior_options={"num_ortho_vecs": 2})
