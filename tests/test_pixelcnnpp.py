import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from causality import abs_jacobian
from tiny_models import TINY, tiny
from zoo.distributions import DiscretizedLogisticMixture
from zoo.layers import (DownRightShiftedConv2D, DownRightShiftedConv2DTranspose, DownShiftedConv2D,
                        DownShiftedConv2DTranspose, GatedResNet)
from zoo.layers import gated_resnet
from zoo.layers.window_product import window_product
from zoo.models import PixelCNNPlusPlus

CONFIG = TINY["PixelCNNPlusPlus"]


def small(image_shape=(4, 4, 3), num_levels=4, **kwargs):
    """The registry's tiny PixelCNN++ (every weight perturbed), by default over 4 x 4 RGB
    images with 4 levels."""
    return tiny(PixelCNNPlusPlus, image_shape, num_levels, **kwargs)


def pixel_jacobian(model, labels=None):
    """`[P, P]` over the H * W pixels in raster order: output (mixture parameters) of
    pixel i against input (all colours) of pixel j."""
    x = tf.random.uniform([16, *model.image_shape], -2, 2, seed=2)
    jac = abs_jacobian(lambda x: model.params_from_inputs(x, labels), x)  # [H, W, N, H, W, C]
    p = model.image_shape[0] * model.image_shape[1]
    return jac.sum(axis=(2, 5)).reshape(p, p)


# ---- layers ---------------------------------------------------------------------------

def support(layer, shape=(1, 8, 8, 1), at=(5, 4)):
    """Input pixels (rows, cols) that output `at` of `layer` depends on."""
    x = tf.random.uniform(shape, -1, 1, seed=1)
    jac = abs_jacobian(lambda x: layer(x)[:, at[0], at[1]], x)  # [F, H, W, C]
    return {tuple(p) for p in np.argwhere(jac.sum(axis=(0, 3)) > 0)}


@pytest.mark.parametrize("layer,expected", [
    (DownShiftedConv2D(3, (2, 3)), {(r, c) for r in (4, 5) for c in (3, 4, 5)}),
    (DownRightShiftedConv2D(3, (2, 2)), {(r, c) for r in (4, 5) for c in (3, 4)}),
    (DownShiftedConv2D(3, (1, 3)), {(5, c) for c in (3, 4, 5)}),
    (DownRightShiftedConv2D(3, (2, 1)), {(4, 4), (5, 4)}),
    # stride 2: output (5, 4) reads input rows 9..10 and columns 7..9 / 7..8 of 16 x 16
    (DownShiftedConv2D(3, strides=2), {(r, c) for r in (9, 10) for c in (7, 8, 9)}),
    (DownRightShiftedConv2D(3, strides=2), {(r, c) for r in (9, 10) for c in (7, 8)}),
])
def test_shifted_convs_see_exactly_their_stated_window(layer, expected):
    shape = (1, 16, 16, 2) if layer.strides == 2 else (1, 8, 8, 2)
    assert support(layer, shape) == expected


@pytest.mark.parametrize("layer", [DownShiftedConv2D(3, (2, 3), weight_norm=True), DownRightShiftedConv2D(3),
                                   DownRightShiftedConv2D(3, (1, 1)), DownRightShiftedConv2D(3, strides=2)])
def test_a_padded_window_gives_the_layers_output_at_its_position(layer):
    # Cached sampling convolves one kh x kw window of the padded input at a time (a matrix
    # product); each must equal the whole-image convolution's output there.
    x = tf.random.uniform([2, 8, 8, 2], -1, 1, seed=1)
    full = layer(x).numpy()
    kh, kw = layer.kernel_size
    padded = tf.pad(x, [[0, 0], [kh - 1, 0], [layer.left, kw - 1 - layer.left], [0, 0]])
    s = layer.strides
    for i, j in itertools.product(range(full.shape[1]), range(full.shape[2])):
        window = padded[:, s * i:s * i + kh, s * j:s * j + kw]
        np.testing.assert_allclose(layer.convolve(window, *layer.effective_weights(), padded=True)[:, 0, 0],
                                   full[:, i, j], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 2, 2, 3), (2, 3, 3)])
def test_window_product_refuses_windows_that_do_not_fit_the_kernel(shape):
    with pytest.raises(ValueError, match=r"windows must be \[n, kh, kw, C\] = \[n, 2, 3, 3\]"):
        window_product(tf.zeros(shape), tf.zeros([2, 3, 3, 4]))


@pytest.mark.parametrize("layer", [DownShiftedConv2DTranspose(3), DownRightShiftedConv2DTranspose(3)])
def test_transposed_shifted_convs_upsample_without_looking_down_or_right(layer):
    x = tf.random.uniform([1, 4, 4, 2], -1, 1, seed=1)
    assert layer(x).shape == (1, 8, 8, 3)
    jac = abs_jacobian(layer, x).sum(axis=(2, 5))  # [8, 8, 4, 4]
    for r, c in itertools.product(range(8), range(8)):
        seen = np.argwhere(jac[r, c] > 0)
        assert len(seen) and all(2 * i <= r for i, _ in seen)  # input row i feeds output rows 2i, 2i + 1
        if layer.right:
            assert all(2 * j <= c for _, j in seen)


def test_weight_norm_initializes_from_the_first_training_batch_only():
    layer = DownShiftedConv2D(5, weight_norm=True, init_scale=0.5)
    x = tf.random.normal([32, 6, 6, 3], seed=4) * 3 + 1
    y = layer(x, training=True).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 0.5, rtol=1e-3)
    assert int(layer.initialized.numpy()) == 1
    g = layer.g.numpy()
    layer(x * 2, training=True)
    np.testing.assert_array_equal(layer.g.numpy(), g)  # never re-initialized
    # kernel = g v / ||v||: the direction's scale does not matter
    layer.kernel.assign(layer.kernel * 7.0)
    np.testing.assert_allclose(layer(x).numpy(), y, rtol=1e-4, atol=1e-4)


def test_gated_resnet_starts_as_identity_plus_a_gate_and_takes_a_shortcut():
    block = GatedResNet("down_right")
    x = tf.random.normal([2, 4, 4, 6], seed=1)
    a = tf.random.normal([2, 4, 4, 12], seed=2)
    out = block(x, a)
    assert out.shape == x.shape
    with pytest.raises(ValueError, match="direction"):
        GatedResNet("up")


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_16_bit_concat_elu_and_gate_run_fused_and_match_the_plain_ops(dtype):
    x, c = (tf.cast(tf.random.normal(shape, seed=seed) * 3, dtype) for shape, seed in (([2, 5, 3, 4], 3), ([2, 5, 3, 8], 4)))
    wy, wz = (tf.cast(tf.random.normal(shape, seed=seed), dtype) for shape, seed in (([8], 5), ([4], 6)))

    def with_grads(concat_elu, gated_sum, x, c):  # values and the gradients of a linear loss
        with tf.GradientTape() as tape:
            tape.watch([x, c])
            y, z = concat_elu(x), gated_sum(x, c)
            loss = tf.reduce_sum(y * tf.cast(wy, y.dtype)) + tf.reduce_sum(z * tf.cast(wz, z.dtype))
        return [y, z, *tape.gradient(loss, [x, c])]

    fused = with_grads(gated_resnet.concat_elu, gated_resnet.gated_sum, x, c)
    x, c = tf.cast(x, tf.float32), tf.cast(c, tf.float32)  # the same numbers: a float32 reference
    plain = with_grads(gated_resnet._concat_elu, gated_resnet._gated_sum, x, c)
    assert gated_resnet._FUSED["concat_elu"].experimental_get_tracing_count() > 0  # it took the XLA path
    assert [t.dtype for t in fused] == [dtype] * 4
    for got, want in zip(fused, plain):
        np.testing.assert_allclose(tf.cast(got, tf.float32), want, rtol=0.02, atol=0.02)
    np.testing.assert_array_equal(gated_resnet.concat_elu(x), plain[0])  # float32 keeps TF's kernels


# ---- the whole network ----------------------------------------------------------------

@pytest.mark.parametrize("image_shape,num_scales", [((8, 8, 1), 3), ((4, 4, 3), 2)], ids=["grey", "rgb"])
def test_each_pixels_mixture_depends_only_on_earlier_pixels(image_shape, num_scales):
    model = small(image_shape, num_scales=num_scales)
    jac = pixel_jacobian(model)
    d = np.arange(jac.shape[0])
    assert np.all(jac[d[:, None] <= d[None, :]] == 0), "a pixel's mixture sees its own or a later pixel"
    # No blind spot: the left neighbour, and the row above up to two columns right.
    h, w = image_shape[:2]
    for r, c in itertools.product(range(h), range(w)):
        near = [(r, c - 1)] + [(r - 1, c + k) for k in (-1, 0, 1, 2)]
        for rr, cc in near:
            if 0 <= rr and 0 <= cc < w:
                assert jac[r * w + c, rr * w + cc] > 0, f"pixel {(r, c)} misses {(rr, cc)}"
    assert np.all(jac[1:, 0] > 0), "the first pixel reaches every later one"


def test_conditional_network_is_causal_too():
    model = small((4, 4, 1), num_classes=3)
    jac = pixel_jacobian(model, tf.constant([0, 1, 2, 1] * 4))
    d = np.arange(16)
    assert np.all(jac[d[:, None] <= d[None, :]] == 0)


@pytest.mark.parametrize("image_shape", [(2, 2, 1), (2, 2, 3)], ids=["grey", "rgb"])
def test_probabilities_of_all_2x2_binary_images_sum_to_one(image_shape):
    model = small(image_shape, num_levels=2, num_scales=1)
    d = int(np.prod(image_shape))
    images = np.array(list(itertools.product([0, 1], repeat=d)), np.uint8).reshape(-1, *image_shape)
    total = np.exp(model.log_prob(images).numpy().astype(np.float64)).sum()
    assert abs(total - 1.0) < 1e-5


def test_log_prob_is_the_sum_of_the_pixels_mixtures():
    model = small((4, 4, 3), num_levels=256)
    images = np.random.default_rng(1).integers(0, 256, (3, 4, 4, 3)).astype(np.uint8)
    params = model.params_from_inputs(model.scale(tf.constant(images, tf.int32)))
    assert params.shape == (3, 4, 4, 2 * 10)  # K (1 + 2C + C(C-1)/2)
    dist = model.distribution(params)
    assert isinstance(dist, DiscretizedLogisticMixture) and dist.batch_shape == (3, 4, 4)
    np.testing.assert_allclose(model.log_prob(images), dist.log_prob(images).numpy().sum(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(model.bits_per_dim(images),
                               -model.log_prob(images) / (48 * np.log(2.0)), rtol=1e-6)


def test_sampling_is_seeded_in_range_and_temperature_zero_is_each_pixels_mode():
    model = small((4, 4, 3), num_levels=4)
    a = model.sample(3, temperature=1.0, seed=11).numpy()
    assert a.dtype == np.uint8 and a.shape == (3, 4, 4, 3) and a.max() < 4
    np.testing.assert_array_equal(a, model.sample(3, temperature=1.0, seed=11))
    assert not np.array_equal(a, model.sample(3, temperature=1.0, seed=12))
    greedy = model.sample(2, temperature=0.0, seed=1).numpy().astype(np.int32)
    # The pixel's mixture depends only on earlier pixels: evaluate all on the final image.
    dist = model.distribution(model.params_from_inputs(model.scale(tf.constant(greedy))))
    colours = np.array(list(itertools.product(range(4), repeat=3)), np.int32)[:, None, None, None]
    joint = np.exp(dist.log_prob(colours).numpy().astype(np.float64)).reshape(4, 4, 4, 2, 4, 4)
    for b, r, c in itertools.product(range(2), range(4), range(4)):
        p, (x0, x1, x2) = joint[..., b, r, c], greedy[b, r, c]
        assert x0 == np.argmax(p.sum(axis=(1, 2))) and x1 == np.argmax(p[x0].sum(axis=1))
        assert x2 == np.argmax(p[x0, x1])


def test_labels_condition_log_prob_and_sampling():
    model = small((4, 4, 1), num_levels=17, num_classes=3)
    images = np.random.default_rng(0).integers(0, 17, (2, 4, 4, 1)).astype(np.uint8)
    assert np.all(np.abs(model.log_prob(images, [0, 0]) - model.log_prob(images, [2, 2])) > 1e-3)
    s = model.sample(3, seed=4, labels=[0, 1, 2]).numpy()
    np.testing.assert_array_equal(s, model.sample(3, seed=4, labels=[0, 1, 2]))
    with pytest.raises(ValueError, match="class-conditional: pass labels"):
        model.log_prob(images)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        model.log_prob(images, [0, 3])
    with pytest.raises(ValueError, match="unconditional"):
        small((4, 4, 1), num_levels=17).log_prob(images, [0, 1])


def test_bfloat16_network_keeps_the_mixture_float32_and_normalized():
    images = np.random.default_rng(4).integers(0, 4, (3, 4, 4, 3)).astype(np.uint8)
    full, half = small(), small(mixed_precision="bfloat16")  # the same float32 weights
    assert half.up[0][0][1].conv_in.compute_dtype == "bfloat16" and half.head.compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in half.weights if w.trainable)
    log_prob = half.log_prob(images)
    assert log_prob.dtype == tf.float32
    np.testing.assert_allclose(log_prob, full.log_prob(images), rtol=1e-5)  # evaluated in float32
    binary = small((2, 2, 1), num_levels=2, num_scales=1, mixed_precision="bfloat16")
    every = np.array(list(itertools.product([0, 1], repeat=4)), np.uint8).reshape(-1, 2, 2, 1)
    assert abs(np.exp(binary.log_prob(every).numpy().astype(np.float64)).sum() - 1.0) < 1e-5


def test_fit_initializes_weight_norm_from_data_then_learns():
    keras.utils.set_random_seed(1)
    model = PixelCNNPlusPlus((4, 4, 1), 5, **{**CONFIG, "nr_resnet": 0, "num_scales": 2}).build_for_images()
    images = np.random.default_rng(2).integers(0, 5, (64, 4, 4, 1)).astype(np.uint8)
    images[:, :, :2] = 0  # learnable structure
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    before = float(np.mean(model.bits_per_dim(images)))
    model.fit(tf.data.Dataset.from_tensor_slices(images).batch(16), epochs=3, verbose=0)
    assert all(int(v.numpy()) == 1 for v in model.non_trainable_weights if "initialized" in v.path)
    assert float(np.mean(model.bits_per_dim(images))) < before - 0.3


# ---- bad input, round trips, presets -------------------------------------------------------

@pytest.mark.parametrize("images,match", [
    (np.zeros((2, 4, 4, 3), np.float32), "integer images"),
    (np.full((2, 4, 4, 3), 4, np.uint8), r"\[0, 4\)"),
    (np.zeros((4, 4, 3), np.uint8), "rank 4"),
    (np.zeros((2, 4, 4, 1), np.uint8), r"shape \[batch, 4, 4, 3\]"),
])
def test_bad_images_are_refused(images, match):
    with pytest.raises(ValueError, match=match):
        small().log_prob(images)


@pytest.mark.parametrize("kwargs,match", [
    ({"image_shape": (4, 4, 2)}, "1 \\(grey\\) or 3 \\(RGB\\)"),
    ({"image_shape": (6, 6, 1), "num_scales": 3}, "divisible by 2\\^\\(num_scales - 1\\) = 4"),
    ({"nr_logistic_mix": 0}, "nr_logistic_mix >= 1"),
    ({"nr_resnet": 0, "num_scales": 1}, "leaves the down stream \\(u\\) out of the output"),
    ({"num_classes": 0}, "num_classes"),
    ({"mixed_precision": "int8"}, "mixed_precision"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PixelCNNPlusPlus(**{"image_shape": (4, 4, 3), "num_levels": 4, **CONFIG, **kwargs})


def test_keras_file_round_trip_in_safe_mode(tmp_path):
    model = small((4, 4, 3), num_levels=256, dropout=0.3, num_classes=2)
    images = np.random.default_rng(2).integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded) is PixelCNNPlusPlus and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.log_prob(images, [0, 1]), model.log_prob(images, [0, 1]))


def test_every_preset_builds_for_its_datasets():
    from reproduce import pixelcnnpp
    from reproduce.runs import Run
    from zoo import data

    for name, preset in pixelcnnpp.PRESETS.items():
        for dataset in {Run("pixelcnnpp", name).dataset, *preset.get("per_dataset", {})}:
            run = Run("pixelcnnpp", name, dataset)
            model = run.build_model()
            assert type(model) is PixelCNNPlusPlus and run.train_config["optimizer"]["name"] == "adam"
            assert model.num_dims == int(np.prod(data.spec(dataset).image_shape))
    paper = pixelcnnpp.PRESETS["paper"]
    assert paper["model"] == {"nr_resnet": 5, "filters": 160, "nr_logistic_mix": 10, "num_scales": 3,
                              "dropout": 0.5}
    assert paper["train"]["optimizer"]["decay"] == 0.999995 and paper["train"]["optimizer"]["ema"] == 0.9995
    assert pixelcnnpp.PUBLISHED["cifar10"]["bits_per_dim"] == 2.92


def test_smoke_run_writes_a_record(tmp_path):
    from reproduce.__main__ import main

    record = main(["pixelcnnpp", "--preset", "smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "runs" / "pixelcnnpp" / "smoke-digits.json").read_text())
    assert saved["model"] == record["model"] == "PixelCNNPlusPlus"
    assert saved["test_images"] == 447 and np.isfinite(saved["test_nats"])
    assert (tmp_path / "figures" / "pixelcnnpp-smoke-digits.png").read_bytes()[:4] == b"\x89PNG"
