"""zoo.ood: the detection metrics against scikit-learn and hand-computed cases, each
score's sign (higher = more anomalous) on models whose answer is known, the background
model's perturbation, the compressors, bad inputs, and `python -m reproduce ood`'s
plumbing on digits."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import average_precision_score, roc_auc_score

from tiny_models import tiny
from zoo import ood

SHAPE, LEVELS = (6, 6, 1), 16
CONSTANT = 3  # the pixel value of the one image the tiny model is trained on


# ---- metrics ---------------------------------------------------------------------------

def pairwise_auroc(in_scores, out_scores):
    """P(OOD score > in score) + P(tie) / 2, over every pair."""
    i, o = np.asarray(in_scores)[:, None], np.asarray(out_scores)[None, :]
    return float(np.mean((o > i) + 0.5 * (o == i)))


def brute_fpr(in_scores, out_scores, level):
    """The smallest FPR over every threshold t (flag score >= t) with TPR >= level."""
    best = 1.0
    for t in np.unique(np.concatenate([in_scores, out_scores])):
        if np.mean(out_scores >= t) >= level:
            best = min(best, float(np.mean(in_scores >= t)))
    return best


def test_metrics_hand_computed():
    in_scores, out_scores = [1, 2, 3, 4, 5], [3, 6, 7, 8, 9]
    # 22.5 of 25 pairs ranked right (the tie 3 = 3 counts half).
    assert ood.auroc(in_scores, out_scores) == pytest.approx(0.9, abs=1e-12)
    # Precision 1 up to recall 0.8, then 5/8 at recall 1 (threshold 3 flags 3 in-distribution).
    assert ood.auprc(in_scores, out_scores) == pytest.approx(0.8 + 0.2 * 5 / 8, abs=1e-12)
    assert ood.fpr_at_tpr(in_scores, out_scores) == 0.0
    # Four of five OOD flagged first at threshold 4.5, which also flags the 5 of five in.
    assert ood.fpr_at_tpr([1, 2, 3, 4, 5], [2.5, 4.5, 6, 7, 8], 0.8) == pytest.approx(0.2, abs=1e-12)
    assert ood.auroc([0, 0], [1, 1]) == 1.0 and ood.auroc([1, 1], [0, 0]) == 0.0


def test_metrics_against_scikit_learn_and_brute_force():
    rng = np.random.default_rng(0)
    in_scores = np.round(rng.normal(0.0, 1.0, 300), 1)  # rounded: ties inside and across sets
    out_scores = np.round(rng.normal(0.7, 1.2, 200), 1)
    labels = np.r_[np.zeros(300), np.ones(200)]
    both = np.r_[in_scores, out_scores]
    m = ood.detection_metrics(in_scores, out_scores)
    assert m["auroc"] == pytest.approx(roc_auc_score(labels, both), abs=1e-12)
    assert m["auroc"] == pytest.approx(pairwise_auroc(in_scores, out_scores), abs=1e-12)
    assert m["auprc"] == pytest.approx(average_precision_score(labels, both), abs=1e-12)
    for level in (0.8, 0.5, 0.95, 1.0):
        assert ood.fpr_at_tpr(in_scores, out_scores, level) == pytest.approx(
            brute_fpr(in_scores, out_scores, level), abs=1e-12)
    assert m["fpr80"] == ood.fpr_at_tpr(in_scores, out_scores, 0.8)
    # OOD is the positive class: swapping the sets mirrors the AUROC.
    assert ood.auroc(out_scores, in_scores) == pytest.approx(1.0 - m["auroc"], abs=1e-12)


@pytest.mark.parametrize("in_scores, out_scores, match", [
    ([], [1.0], "at least one in-distribution"),
    ([1.0], [np.nan], "finite out-of-distribution"),
])
def test_metrics_refuse_bad_scores(in_scores, out_scores, match):
    with pytest.raises(ValueError, match=match):
        ood.auroc(in_scores, out_scores)


# ---- scores on models whose answer is known -------------------------------------------------

@pytest.fixture(scope="module")
def constant_model():
    """A tiny ARM trained a few dozen steps on one constant image."""
    model = tiny("ARM", image_shape=SHAPE, num_levels=LEVELS)
    images = np.full((64, *SHAPE), CONSTANT, np.uint8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    model.fit(images, epochs=4, batch_size=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def background():
    return tiny("ARM", image_shape=SHAPE, num_levels=LEVELS, seed=5)


def noise(n=20, seed=1):
    return np.random.default_rng(seed).integers(0, LEVELS, (n, *SHAPE)).astype(np.uint8)


def constant(n=4):
    return np.full((n, *SHAPE), CONSTANT, np.uint8)


def test_negative_log_likelihood_is_bits_per_dim_and_ranks_noise_above_the_constant(constant_model):
    x = np.concatenate([constant(2), noise()])
    nll = ood.negative_log_likelihood(constant_model, x, batch_size=7)  # several batches
    expected = -constant_model.log_prob(x).numpy() / (math.prod(SHAPE) * math.log(2.0))
    np.testing.assert_allclose(nll, expected, rtol=1e-5)
    assert ood.auroc(nll[:2], nll[2:]) == 1.0


def test_likelihood_ratio_sign_and_identities(constant_model, background):
    x = np.concatenate([constant(2), noise()])
    llr = ood.likelihood_ratio(constant_model, background, x)
    assert ood.auroc(llr[:2], llr[2:]) == 1.0
    # A model against itself: no evidence either way.
    np.testing.assert_array_equal(ood.likelihood_ratio(constant_model, constant_model, x), 0.0)
    # S(x) with the background model as the compressor is the likelihood ratio.
    s = ood.complexity_corrected(constant_model, x, ood.ModelCodeLength(background))
    np.testing.assert_allclose(s, llr, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("compressor", [ood.PNG, ood.JPEG2000], ids=lambda c: c.name)
def test_complexity_corrected_sign_and_units(constant_model, compressor):
    x = np.concatenate([constant(2), noise()])
    bits = ood.complexity_corrected(constant_model, x, compressor, per_dim=False)
    per_dim = ood.complexity_corrected(constant_model, x, compressor)
    np.testing.assert_allclose(per_dim, bits / math.prod(SHAPE), rtol=1e-12)
    model_bits = ood.negative_log_likelihood(constant_model, x) * math.prod(SHAPE)
    np.testing.assert_allclose(bits, model_bits - compressor(x), rtol=1e-9)
    assert ood.auroc(bits[:2], bits[2:]) == 1.0


class IIDModel:
    """An exact stand-in for a density model: every pixel independent with probabilities
    `q` over the levels, so the mode (all pixels at the likeliest level) is atypical."""

    def __init__(self, q, image_shape):
        self.q, self.image_shape = np.asarray(q, np.float64), tuple(image_shape)
        self.num_levels, self.num_dims = len(q), math.prod(image_shape)

    def log_prob(self, images):
        return np.log(self.q)[np.asarray(images)].reshape(len(images), -1).sum(axis=1)


def test_typicality_flags_inputs_more_likely_than_typical():
    model = IIDModel([0.7, 0.3], (8, 8, 1))
    rng = np.random.default_rng(0)
    draw = lambda n: (rng.random((n, 8, 8, 1)) < 0.3).astype(np.uint8)  # noqa: E731
    entropy = ood.entropy_estimate(model, draw(2000))
    exact = -(0.7 * math.log2(0.7) + 0.3 * math.log2(0.3))  # bits per pixel
    assert entropy == pytest.approx(exact, abs=0.01)
    typical, modes = draw(400), np.zeros((400, 8, 8, 1), np.uint8)
    # By likelihood the all-zero images look the least anomalous of all ...
    assert ood.auroc(ood.negative_log_likelihood(model, typical), ood.negative_log_likelihood(model, modes)) == 0.0
    # ... by typicality over batches of 10 they are the most.
    in_batches, out_batches = (ood.typicality(model, x, entropy, 10) for x in (typical, modes))
    assert len(in_batches) == 40 and ood.auroc(in_batches, out_batches) == 1.0
    np.testing.assert_allclose(out_batches, entropy + math.log2(0.7), rtol=1e-9)


def test_typicality_statistic_groups_and_drops_the_remainder():
    bits = np.array([1.0, 3.0, 2.0, 6.0, 100.0])
    np.testing.assert_allclose(ood.typicality_statistic(bits, 2.5, 2), [0.5, 1.5])
    np.testing.assert_allclose(ood.typicality_statistic(bits, 2.5, 1), np.abs(bits - 2.5))


def test_typicality_on_the_constant_model(constant_model):
    entropy = ood.entropy_estimate(constant_model, constant(8))
    in_batches = ood.typicality(constant_model, constant(8), entropy, 4)
    out_batches = ood.typicality(constant_model, noise(8), entropy, 4)
    np.testing.assert_allclose(in_batches, 0.0, atol=1e-6)
    assert out_batches.min() > 1.0


# ---- the background model's perturbation ----------------------------------------------------

@pytest.mark.parametrize("rate, num_levels", [(0.1, 256), (0.3, 2), (0.5, 5)])
def test_perturbation_changes_the_stated_fraction_of_pixels(rate, num_levels):
    """A replaced pixel takes a uniform level, its own with chance 1 / L: the changed
    fraction is rate (1 - 1 / L), within 5 binomial standard deviations."""
    images = tf.zeros((100, 28, 28, 1), tf.uint8)
    seed = tf.constant([7, 11], tf.int64)
    out = ood.perturb(images, rate, num_levels, seed).numpy()
    changed = out != 0
    p = rate * (1.0 - 1.0 / num_levels)
    sigma = math.sqrt(p * (1 - p) / changed.size)
    assert abs(changed.mean() - p) < 5 * sigma
    # Changed pixels are uniform over the other levels: mean L / 2 for an all-zero image.
    new = out[changed].astype(np.float64)
    assert abs(new.mean() - num_levels / 2) < 5 * math.sqrt((num_levels**2 - 4) / 12 / new.size) + 1e-9
    assert out.max() < num_levels and out.dtype == np.uint8
    np.testing.assert_array_equal(ood.perturb(images, rate, num_levels, seed).numpy(), out)
    assert not np.array_equal(ood.perturb(images, rate, num_levels, seed + 1).numpy(), out)


# ---- compressors ---------------------------------------------------------------------------

@pytest.mark.parametrize("compressor", [ood.PNG, ood.JPEG2000], ids=lambda c: c.name)
@pytest.mark.parametrize("shape", [(28, 28, 1), (8, 8, 3)])
def test_compressors_are_lossless_and_shorter_for_simpler_images(compressor, shape):
    images = np.random.default_rng(0).integers(0, 256, (3, *shape)).astype(np.uint8)
    for image in images:
        np.testing.assert_array_equal(compressor.decode(compressor.encode(image), shape[-1]), image)
    flat = np.full((1, *shape), 128, np.uint8)
    assert compressor(flat)[0] < compressor(images).min()
    assert compressor(images)[0] == 8 * len(compressor.encode(images[0]))


# ---- bad inputs ----------------------------------------------------------------------------

def one_line(excinfo):
    return "\n" not in str(excinfo.value)


def test_bad_inputs_are_refused_in_one_line(constant_model, background):
    cases = [
        (lambda: ood.check_same_shape(np.zeros((2, 28, 28, 1)), np.zeros((2, 32, 32, 1))), "one shape"),
        (lambda: ood.negative_log_likelihood(constant_model, np.zeros((2, 7, 6, 1), np.uint8)),
         r"shape \[n, 6, 6, 1\]"),
        (lambda: ood.negative_log_likelihood(constant_model, np.zeros((2, *SHAPE), np.float32)), "integer"),
        (lambda: ood.negative_log_likelihood(constant_model, np.full((2, *SHAPE), LEVELS, np.uint8)),
         r"\[0, 16\)"),
        (lambda: ood.negative_log_likelihood(constant_model, np.zeros((0, *SHAPE), np.uint8)), "at least one"),
        (lambda: ood.likelihood_ratio(constant_model, tiny("ARM", image_shape=(4, 4, 1), num_levels=LEVELS),
                                      constant()), "background model"),
        (lambda: ood.likelihood_ratio(constant_model, tiny("ARM", image_shape=SHAPE, num_levels=8),
                                      constant()), "16 levels"),
        (lambda: ood.typicality_statistic(np.zeros(5), 0.0, 0), "batch size M"),
        (lambda: ood.typicality_statistic(np.zeros(5), 0.0, 6), "batch size M"),
        (lambda: ood.PNG(np.zeros((1, 4, 4, 2), np.uint8)), "1 or 3"),
        (lambda: ood.PNG(np.full((1, 4, 4, 1), 256, np.int32)), r"in \[0, 256\)"),
        (lambda: ood.PNG(np.zeros((1, 4, 4, 1), np.float32)), "integer images"),
        (lambda: ood.fpr_at_tpr([0.0], [1.0], 0.0), "tpr"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match) as excinfo:
            call()
        assert one_line(excinfo), str(excinfo.value)


# ---- python -m reproduce ood ---------------------------------------------------------------

def test_reproduce_ood_on_digits(tmp_path, monkeypatch):
    """The command's plumbing on digits against itself (identical sets: every AUROC is
    exactly 0.5), with a model that is not shipped reported as a missing row."""
    import json

    from reproduce import __main__ as driver
    from reproduce import ood as command

    monkeypatch.setattr(command, "PAIRS", ({"in": "digits", "out": "digits",
                                            "models": ("arm-digits", "nothing-digits"),
                                            "backgrounds": {"arm-digits": "pixelcnn-digits"}},))
    record = driver.main(["ood", "--out", str(tmp_path), "--limit", "60"])
    (pair,) = record["pairs"]
    scored, missing = pair["models"]
    assert missing == {"model": "nothing-digits", "status": "missing: not a shipped pretrained model"}
    assert scored["images_in"] == scored["images_out"] == 60
    assert set(scored["scores"]) == set(command.SCORE_LABELS)
    for name, m in scored["scores"].items():
        assert m["auroc"] == pytest.approx(0.5, abs=1e-12), name
    assert json.loads((tmp_path / "runs" / "ood.json").read_text()) == record
    text = (tmp_path / "ood.md").read_text()
    assert text == command.markdown(record) and "| nothing-digits | missing" in text
    assert (tmp_path / pair["figure"]).is_file()
