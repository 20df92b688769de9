"""Distribution augmentation (`zoo.models.distribution_augmentation`) and PixelCNN++ trained
with it: transforms are the square's symmetries, each condition is a normalized density,
training draws transforms uniformly, evaluation and sampling use the identity."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from causality import abs_jacobian
from serving import served_bits_and_sample
from tiny_models import TINY, tiny
from zoo.models import PixelCNNPlusPlus
from zoo.models.distribution_augmentation import TRANSFORMS, apply_transforms, check_augmentations, inverses

ALL = list(TRANSFORMS)
CONFIG = TINY["PixelCNNPlusPlus"]
# numpy on [b, H, W, C]: the group of the square, written independently of the module.
NUMPY = {
    "identity": lambda x: x,
    "rot90": lambda x: np.rot90(x, 1, axes=(1, 2)),
    "rot180": lambda x: np.rot90(x, 2, axes=(1, 2)),
    "rot270": lambda x: np.rot90(x, 3, axes=(1, 2)),
    "flip_lr": lambda x: x[:, :, ::-1],
    "flip_ud": lambda x: x[:, ::-1],
    "transpose": lambda x: np.swapaxes(x, 1, 2),
    "antitranspose": lambda x: np.rot90(np.swapaxes(x, 1, 2), 2, axes=(1, 2)),
}


def augmented(image_shape=(4, 4, 1), num_levels=5, augmentations=ALL, **kwargs):
    """The registry's tiny PixelCNN++ with `augmentations`, every weight perturbed (the
    transforms' condition weights non-zero). No weight norm: its first training batch
    would re-initialize the weights."""
    return tiny(PixelCNNPlusPlus, image_shape, num_levels, augmentations=augmentations,
                **{"num_scales": 1, "weight_norm": False, **kwargs})


def test_transforms_are_the_eight_distinct_symmetries_of_the_square():
    x = np.arange(2 * 3 * 3 * 2).reshape(2, 3, 3, 2)  # every value distinct
    outputs = {}
    for name in ALL:
        y = TRANSFORMS[name](tf.constant(x)).numpy()
        np.testing.assert_array_equal(y, NUMPY[name](x), err_msg=name)
        assert sorted(y.ravel()) == sorted(x.ravel())  # a permutation of the pixels
        np.testing.assert_array_equal(y[..., 1] - y[..., 0], 1)  # colours stay with their pixel
        outputs[y.tobytes()] = name
    assert len(outputs) == 8


def test_inverses_undo_each_transform():
    x = tf.constant(np.arange(2 * 4 * 4).reshape(2, 4, 4, 1))
    for name, inverse in zip(ALL, inverses(ALL)):
        np.testing.assert_array_equal(TRANSFORMS[inverse](TRANSFORMS[name](x)), x, err_msg=name)


def test_each_image_gets_its_own_transform():
    x = np.random.default_rng(0).integers(0, 9, (8, 3, 3, 1))
    ids = np.array([7, 0, 3, 5, 1, 6, 2, 4])
    y = apply_transforms(tf.constant(x), tf.constant(ids), ALL).numpy()
    for i, t in enumerate(ids):
        np.testing.assert_array_equal(y[i], NUMPY[ALL[t]](x[i:i + 1])[0])


@pytest.mark.parametrize("names,shape,match", [
    (["identity", "shear"], (4, 4, 1), "Unknown augmentations \\['shear'\\]"),
    (["rot90", "identity"], (4, 4, 1), "start with 'identity'"),
    (["identity"], (4, 4, 1), "at least one other"),
    (["identity", "rot90", "rot90"], (4, 4, 1), "not repeat"),
    (["identity", "flip_lr", "transpose"], (4, 6, 1), "\\['transpose'\\] swap height and width"),
    ("rot90", (4, 4, 1), "list of transform names"),
])
def test_bad_augmentations_are_refused(names, shape, match):
    with pytest.raises(ValueError, match=match):
        check_augmentations(names, shape)
    with pytest.raises(ValueError, match=match):
        PixelCNNPlusPlus(shape, 4, augmentations=names, **CONFIG)


def test_flips_need_no_square():
    assert check_augmentations(["identity", "flip_lr", "flip_ud", "rot180"], (4, 6, 1))[1] == "flip_lr"


@pytest.mark.parametrize("t", range(8))
def test_every_transforms_density_sums_to_one_over_all_2x2_binary_images(t):
    model = augmented((2, 2, 1), num_levels=2)
    images = np.array(list(itertools.product([0, 1], repeat=4)), np.uint8).reshape(-1, 2, 2, 1)
    log_p = model.augmented_log_prob(images, np.full([16], t)).numpy().astype(np.float64)
    assert abs(np.exp(log_p).sum() - 1.0) < 1e-5


def test_evaluation_is_the_identity_and_conditions_differ():
    model = augmented()
    images = np.random.default_rng(1).integers(0, 5, (8, 4, 4, 1)).astype(np.uint8)
    # log_prob runs the evaluation graph, augmented_log_prob eagerly: the same math, rounded apart.
    np.testing.assert_allclose(model.log_prob(images), model.augmented_log_prob(images, np.zeros(8, int)),
                               rtol=0, atol=1e-4)
    # log p(t(x) | t) under each t: the condition changes the density, not only the image.
    same = np.repeat(images[:1], 8, 0)
    by_t = model.augmented_log_prob(same, np.arange(8)).numpy()
    invariant = np.all([np.array_equal(NUMPY[name](same[:1]), same[:1]) for name in ALL])
    assert not invariant and len(np.unique(np.round(by_t, 4))) == 8


def test_training_draws_transforms_uniformly_and_scores_the_transformed_image():
    model = augmented()
    images = np.random.default_rng(2).integers(0, 5, (64, 4, 4, 1)).astype(np.uint8)
    each = np.stack([model.augmented_log_prob(images, np.full([64], t)).numpy() for t in range(8)], 1)
    drawn = []
    for _ in range(4):
        lp = model.log_prob(images, training=True).numpy()  # dropout 0: only the draw of t varies
        match = np.abs(each - lp[:, None]) < 1e-4 * np.abs(lp[:, None])
        assert np.all(match.sum(1) >= 1), "a training log-prob is no transform's log p(t(x) | t)"
        drawn += list(np.argmax(match, 1))
    counts = np.bincount(drawn, minlength=8)  # 256 draws, 32 expected each
    assert counts.min() >= 12 and counts.max() <= 56, counts


def test_network_is_causal_under_every_condition():
    model = augmented((4, 4, 1))
    x = tf.random.uniform([16, 4, 4, 1], -2, 2, seed=2)  # two images under each transform
    jac = abs_jacobian(lambda x: model.params_from_inputs(x, augmentation=tf.range(16) % 8), x)
    jac = jac.sum(axis=(2, 5)).reshape(16, 16)  # output pixel i against input pixel j
    d = np.arange(16)
    assert np.all(jac[d[:, None] <= d[None, :]] == 0) and np.all(jac[1:, 0] > 0)


def test_samplers_agree_and_use_the_identity():
    model = augmented((4, 4, 1), num_levels=16, num_classes=2)
    cached = model.sample(4, seed=5, labels=[0, 1, 1, 0]).numpy()
    np.testing.assert_array_equal(cached, model.sample(4, seed=5, labels=[0, 1, 1, 0], method="naive"))
    greedy = model.sample(2, temperature=0.0, seed=1, labels=[1, 1]).numpy().astype(np.int32)
    params = model.params_from_inputs(model.scale(tf.constant(greedy)), tf.constant([1, 1]))
    mode = np.argmax(np.exp(model.distribution(params).log_prob(
        np.arange(16).reshape(16, 1, 1, 1, 1)).numpy()), axis=0)  # [2, 4, 4] per pixel
    np.testing.assert_array_equal(greedy[..., 0], mode)


def test_bad_ids_are_refused_and_round_trip_keeps_augmentations(tmp_path):
    model = augmented()
    images = np.zeros((2, 4, 4, 1), np.uint8)
    for ids, match in (([0, 8], r"transform ids in \[0, 8\), got values in \[0, 8\]"),
                       ([-1, 0], r"transform ids in \[0, 8\), got values in \[-1, 0\]"),
                       ([0.0, 1.0], r"integer transform ids in \[0, 8\), got dtype float64"),
                       ([0, 1, 2], r"transform ids of shape \[2\], got \(3,\)")):
        with pytest.raises(ValueError, match=match):
            model.augmented_log_prob(images, np.array(ids))
    with pytest.raises(ValueError, match="no augmentations"):
        PixelCNNPlusPlus((4, 4, 1), 5, **CONFIG).augmented_log_prob(images, [0, 0])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.augmentations == tuple(ALL) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.augmented_log_prob(images, [3, 6]), model.augmented_log_prob(images, [3, 6]))


def test_saved_model_serves_the_identitys_likelihood_without_zoo(tmp_path):
    import zoo

    model = augmented((4, 4, 1), num_levels=4)
    x = np.random.default_rng(3).integers(0, 4, (5, 4, 4, 1)).astype(np.uint8)
    out = served_bits_and_sample(zoo.export(model, tmp_path / "saved"), x, tmp_path)
    np.testing.assert_allclose(out["bits_per_dim"], model.bits_per_dim(x), rtol=1e-5)
    np.testing.assert_array_equal(out["sample"], model.sample(3, temperature=1.0, seed=5))


# ---- the mixture over transforms ------------------------------------------------------------

FOUR = ["identity", "rot180", "flip_lr", "flip_ud"]


@pytest.mark.parametrize("augmentations", [ALL, FOUR], ids=["eight", "four"])
def test_mixture_over_transforms_sums_to_one_over_all_2x2_binary_images(augmentations):
    model = augmented((2, 2, 1), num_levels=2, augmentations=augmentations, augmentation_mixture=True)
    images = np.array(list(itertools.product([0, 1], repeat=4)), np.uint8).reshape(-1, 2, 2, 1)
    assert abs(np.exp(model.log_prob(images).numpy().astype(np.float64)).sum() - 1.0) < 1e-5


def test_mixture_log_prob_is_the_mean_of_the_transforms_densities():
    model = augmented(augmentations=FOUR, augmentation_mixture=True, num_classes=3)
    images = np.random.default_rng(5).integers(0, 5, (6, 4, 4, 1)).astype(np.uint8)
    labels = np.array([0, 1, 2, 2, 1, 0])
    each = np.stack([model.augmented_log_prob(images, np.full([6], t), labels).numpy() for t in range(4)])
    expected = np.log(np.mean(np.exp(each.astype(np.float64)), axis=0))
    np.testing.assert_allclose(model.log_prob(images, labels), expected, rtol=1e-6)
    assert np.all(model.log_prob(images, labels).numpy() > each.min(0))


def test_mixture_samples_are_components_draws_mapped_back():
    model = augmented((4, 4, 1), num_levels=16, augmentations=ALL, augmentation_mixture=True)
    greedy = model.sample(24, temperature=0.0, seed=7).numpy().astype(np.int32)
    np.testing.assert_array_equal(greedy, model.sample(24, temperature=0.0, seed=7, method="naive"))
    np.testing.assert_array_equal(model.sample(5, seed=2), model.sample(5, seed=2, method="naive"))
    # At temperature 0 component t draws its mode: t(image) is each pixel's mode under t.
    components = []
    for image in greedy:
        found = []
        for t, name in enumerate(ALL):
            y = TRANSFORMS[name](tf.constant(image[None]))
            params = model.params_from_inputs(model.scale(y), augmentation=tf.constant([t]))
            mode = np.argmax(model.distribution(params).log_prob(np.arange(16).reshape(16, 1, 1, 1, 1)).numpy(), 0)
            found += [t] if np.array_equal(mode, y.numpy()[..., 0]) else []
        assert found, "a sample is no component's mode mapped back"
        components.append(found[0])
    assert len(set(components)) >= 4, components


def test_mixture_needs_augmentations():
    with pytest.raises(ValueError, match="augmentation_mixture=True needs augmentations"):
        PixelCNNPlusPlus((4, 4, 1), 5, augmentation_mixture=True, **CONFIG)
