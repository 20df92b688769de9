import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from causality import abs_jacobian
from tiny_models import tiny
from zoo.models import GatedPixelCNN, PixelCNN


def small(cls, image_shape=(4, 4, 3), num_levels=4, **kwargs):
    """The registry's tiny `cls` (every weight perturbed), by default over 4 x 4 RGB images
    with 4 levels."""
    return tiny(cls, image_shape, num_levels, **kwargs)


def jacobian(model, labels=None):
    """|d logits(pixel i, colour c) / d input(pixel j, colour k)| summed over levels and a
    batch: `[D, D]` with D = H * W * C in raster-then-colour order. A batch of 16 random
    inputs, so that no path is zero only because its ReLUs happen to be inactive."""
    x = tf.random.uniform([16, *model.image_shape], -2, 2, seed=2)
    jac = abs_jacobian(lambda x: model.logits_from_inputs(x, labels), x).sum(axis=3)
    return jac.reshape(model.num_dims, model.num_dims)


@pytest.mark.parametrize("image_shape", [(5, 5, 1), (4, 4, 3)], ids=["grey", "rgb"])
@pytest.mark.parametrize("cls", [PixelCNN, GatedPixelCNN])
def test_outputs_depend_only_on_earlier_pixels_and_colours(cls, image_shape):
    model = small(cls, image_shape, filters=12)
    jac = jacobian(model)
    d = np.arange(model.num_dims)
    assert np.all(jac[d[:, None] <= d[None, :]] == 0), "an output sees its own or a later input"
    # Within a pixel: G sees R, B sees R and G (RGB), through the type-A first layer.
    if image_shape[-1] == 3:
        assert jac[1, 0] > 0 and jac[2, 0] > 0 and jac[2, 1] > 0


def test_pixelcnn_has_the_blind_spot_and_gated_pixelcnn_does_not():
    shape = (6, 6, 1)
    pixel = jacobian(small(PixelCNN, shape, num_blocks=3)).reshape(6, 6, 6, 6)
    # 3x3 masks: output (r, c) never reaches (r - 1, c + 2), though it reaches (r - 2, c + 2).
    assert pixel[3, 2, 2, 4] == 0 and pixel[3, 2, 1, 4] > 0
    gated = jacobian(small(GatedPixelCNN, shape, num_layers=4, first_kernel_size=5))
    d = np.arange(36)
    assert np.all(gated[d[:, None] > d[None, :]] > 0), "every earlier pixel is in the receptive field"


def test_gated_rgb_sees_every_earlier_pixel_and_colour():
    gated = jacobian(small(GatedPixelCNN, (3, 3, 3), filters=12, num_layers=3, first_kernel_size=5))
    d = np.arange(27)
    assert np.all(gated[d[:, None] > d[None, :]] > 0)


@pytest.mark.parametrize("cls", [PixelCNN, GatedPixelCNN])
def test_probabilities_of_all_2x2_binary_images_sum_to_one(cls):
    model = small(cls, (2, 2, 1), num_levels=2)
    images = np.array(list(itertools.product([0, 1], repeat=4)), np.uint8).reshape(16, 2, 2, 1)
    total = np.exp(model.log_prob(images).numpy().astype(np.float64)).sum()
    assert abs(total - 1.0) < 1e-5


def test_conditional_probabilities_sum_to_one_for_every_label():
    model = small(GatedPixelCNN, (1, 2, 2), num_levels=2, filters=4, num_classes=3)
    images = np.array(list(itertools.product([0, 1], repeat=4)), np.uint8).reshape(16, 1, 2, 2)
    for label in range(3):
        logp = model.log_prob(images, np.full([16], label)).numpy().astype(np.float64)
        assert abs(np.exp(logp).sum() - 1.0) < 1e-5


def test_label_changes_log_prob_and_sampling_honours_labels():
    model = small(GatedPixelCNN, (3, 3, 1), num_levels=3, num_classes=4)
    images = np.random.default_rng(0).integers(0, 3, (2, 3, 3, 1)).astype(np.uint8)
    a, b = model.log_prob(images, [0, 0]).numpy(), model.log_prob(images, [3, 3]).numpy()
    assert np.all(np.abs(a - b) > 1e-3)
    np.testing.assert_allclose(model.bits_per_dim(images, [0, 0]), -a / (9 * np.log(2.0)), rtol=1e-6)
    np.testing.assert_allclose(model((images, np.array([3, 3]))), model.bits_per_dim(images, [3, 3]))
    s = model.sample(3, temperature=1.0, seed=4, labels=[0, 1, 3]).numpy()
    assert s.shape == (3, 3, 3, 1) and s.dtype == np.uint8 and s.max() < 3
    np.testing.assert_array_equal(s, model.sample(3, temperature=1.0, seed=4, labels=[0, 1, 3]))
    # Greedy samples follow the label: each value is the argmax given the label.
    for label in (0, 3):
        g = model.sample(2, temperature=0.0, seed=1, labels=label).numpy()
        logits = model.logits_from_inputs(model.scale(tf.constant(g, tf.int32)), tf.constant([label] * 2))
        np.testing.assert_array_equal(g, np.argmax(logits, -1))
    assert model.sample(5, seed=2).shape == (5, 3, 3, 1)  # no labels: classes drawn uniformly


@pytest.mark.parametrize("labels,match", [
    ([0, 4], r"labels in \[0, 4\)"),
    ([-1, 0], r"labels in \[0, 4\)"),
    ([0, 1, 2], r"labels of shape \[2\]"),
    ([[0, 1]], r"labels of shape \[2\]"),
    ([0.5, 1.0], "integer labels"),
    (7, r"labels in \[0, 4\)"),
])
def test_bad_labels_are_refused(labels, match):
    model = small(GatedPixelCNN, (2, 2, 1), num_levels=3, num_classes=4)
    with pytest.raises(ValueError, match=match):
        model.sample(2, labels=labels)
    if not isinstance(labels, int):
        with pytest.raises(ValueError, match=match):
            model.log_prob(np.zeros((2, 2, 2, 1), np.uint8), labels)


def test_labels_are_required_exactly_when_conditional():
    conditional = small(GatedPixelCNN, (2, 2, 1), num_levels=3, num_classes=4)
    with pytest.raises(ValueError, match="class-conditional: pass labels"):
        conditional.log_prob(np.zeros((2, 2, 2, 1), np.uint8))
    plain = small(GatedPixelCNN, (2, 2, 1), num_levels=3)
    with pytest.raises(ValueError, match="unconditional"):
        plain.log_prob(np.zeros((2, 2, 2, 1), np.uint8), [0, 1])
    with pytest.raises(ValueError, match="unconditional"):
        plain.sample(2, labels=[0, 1])


@pytest.mark.parametrize("cls", [PixelCNN, GatedPixelCNN])
def test_sampling_is_seeded_and_temperature_zero_is_the_mode(cls):
    model = small(cls, (3, 3, 3), num_levels=4)
    a = model.sample(4, temperature=1.0, seed=11).numpy()
    np.testing.assert_array_equal(a, model.sample(4, temperature=1.0, seed=11))
    assert not np.array_equal(a, model.sample(4, temperature=1.0, seed=12))
    greedy = model.sample(2, temperature=0.0, seed=1).numpy()
    logits = model.logits_from_inputs(model.scale(tf.constant(greedy, tf.int32)))
    np.testing.assert_array_equal(greedy, np.argmax(logits, -1))


@pytest.mark.parametrize("images,match", [
    (np.zeros((2, 3, 3, 3), np.float32), "integer images"),
    (np.full((2, 3, 3, 3), 4, np.uint8), r"\[0, 4\)"),
    (np.zeros((3, 3, 3), np.uint8), "rank 4"),
    (np.zeros((2, 3, 3, 1), np.uint8), r"shape \[batch, 3, 3, 3\]"),
])
@pytest.mark.parametrize("cls", [PixelCNN, GatedPixelCNN])
def test_bad_images_and_sample_arguments_are_refused(cls, images, match):
    model = small(cls, (3, 3, 3), num_levels=4)
    with pytest.raises(ValueError, match=match):
        model.bits_per_dim(images)
    with pytest.raises(ValueError, match="positive integer"):
        model.sample(0)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=-1.0)


@pytest.mark.parametrize("cls,kwargs,match", [
    (PixelCNN, {"num_blocks": -1}, "num_blocks"),
    (GatedPixelCNN, {"filters": 4}, "multiple of color_channels"),
    (GatedPixelCNN, {"num_layers": 0}, "num_layers"),
    (GatedPixelCNN, {"num_classes": 0}, "num_classes"),
    (GatedPixelCNN, {"filters": 6, "kernel_size": 4}, "odd"),
])
def test_bad_configs_are_refused(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(image_shape=(4, 4, 3), num_levels=4, **kwargs).build_for_images()


@pytest.mark.parametrize("cls,kwargs", [(PixelCNN, {"dropout": 0.2}),
                                        (GatedPixelCNN, {"dropout": 0.2, "num_classes": 3,
                                                         "vertical_dropout": True})])
def test_keras_file_round_trip_in_safe_mode(tmp_path, cls, kwargs):
    model = small(cls, (3, 3, 3), num_levels=4, **kwargs)
    images = np.random.default_rng(2).integers(0, 4, (2, 3, 3, 3)).astype(np.uint8)
    args = (images, [1, 2]) if kwargs.get("num_classes") else (images,)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded) is cls and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.log_prob(*args), model.log_prob(*args))


def test_vertical_dropout_drops_the_vertical_stack_only_while_training():
    x = tf.random.stateless_uniform((2, 4, 4, 1), seed=[1, 2], minval=-1.0, maxval=1.0)
    plain = small(GatedPixelCNN, (4, 4, 1), dropout=0.5).layers_[1]
    both = small(GatedPixelCNN, (4, 4, 1), dropout=0.5, vertical_dropout=True).layers_[1]
    v, h = np.asarray(x).repeat(6, -1), np.asarray(x).repeat(6, -1)
    for layer in (plain, both):  # inference: dropout off, the same layer either way
        np.testing.assert_array_equal(layer(v, h)[0], plain(v, h)[0])
    v_train = both(v, h, training=True)[0].numpy()
    zeros = np.mean(v_train == 0) - np.mean(both(v, h)[0].numpy() == 0)
    assert 0.3 < zeros < 0.7  # about half the vertical maps dropped
    np.testing.assert_array_equal(plain(v, h, training=True)[0], plain(v, h)[0])


def test_every_preset_names_a_model_its_datasets_can_build():
    from reproduce.runs import Run, get_paper
    from zoo import data

    for name, preset in get_paper("pixelcnn").presets.items():
        for dataset in {Run("pixelcnn", name).dataset, *preset.get("per_dataset", {})}:
            model = Run("pixelcnn", name, dataset).build_model()  # a model that does not fit raises
            assert model.num_dims == int(np.prod(data.spec(dataset).image_shape))


def test_smoke_run_records_the_presets_model_class(tmp_path):
    from reproduce.__main__ import main

    record = main(["pixelcnn", "--preset", "smoke", "--out", str(tmp_path), "--epochs", "1"])
    saved = json.loads((tmp_path / "runs" / "pixelcnn" / "smoke-digits.json").read_text())
    assert saved["model"] == record["model"] == "GatedPixelCNN" and "class" not in saved["config"]
    assert saved["test_images"] == 447 and np.isfinite(saved["test_nats"])
    assert (tmp_path / "figures" / "pixelcnn-smoke-digits.png").read_bytes()[:4] == b"\x89PNG"


def test_conditional_model_fits_through_keras_on_image_label_pairs():
    model = small(GatedPixelCNN, (3, 3, 1), num_levels=3, num_classes=2)
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 64)
    images = np.where(labels[:, None, None, None] == 1, 2, 0) * np.ones((64, 3, 3, 1), np.int64)
    pairs = tf.data.Dataset.from_tensor_slices(((images.astype(np.uint8), labels),)).batch(16)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    before = float(np.mean(model.bits_per_dim(images.astype(np.uint8), labels)))
    model.fit(pairs, epochs=5, verbose=0)
    after = float(np.mean(model.bits_per_dim(images.astype(np.uint8), labels)))
    assert after < 0.5 * before  # the label tells the model which constant image it is
