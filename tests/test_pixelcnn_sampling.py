"""The cached samplers of PixelCNN and the Gated PixelCNN (`zoo/models/pixelcnn_sampling.py`)
draw exactly the naive loop's images for the same seed (16-bit models: `test_fidelity.py`)."""

import numpy as np
import pytest
import tensorflow as tf

from tiny_models import tiny
from zoo.layers import MaskedConv2D
from zoo.models import GatedPixelCNN, PixelCNN

# Non-square images, so that a row/column mix-up in the caches shows.
SHAPES = {"grey": ((5, 7, 1), 17), "rgb": ((3, 4, 3), 4)}


def draw(model, method, n, temperature, seed, labels=None):
    """Images `[n, H, W, C]` from the cached or the naive sampler."""
    return model.sample(n, labels=labels, temperature=temperature, seed=seed, method=method).numpy()


def assert_same_varied_images(model, temperature, seed, labels=None, n=8):
    cached = draw(model, "cached", n, temperature, seed, labels)
    np.testing.assert_array_equal(cached, draw(model, "naive", n, temperature, seed, labels))
    if temperature > 0:
        assert len(np.unique(cached)) > 2, "degenerate samples would make the equality trivial"
    return cached


@pytest.mark.parametrize("kernel_size,mask_type", [(5, "A"), ((3, 5), "B"), (1, "B")])
def test_masked_conv_step_is_call_at_the_window_centre(kernel_size, mask_type):
    layer = MaskedConv2D(6, kernel_size, mask_type, color_channels=3)
    x = tf.random.normal([2, 6, 7, 3], seed=1)
    layer.build(x.shape)
    layer.bias.assign(tf.random.normal([6], seed=2))
    full = layer(x)
    kh, kw = layer.kernel_size
    padded = tf.pad(x, [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [0, 0]])
    kernel = layer.masked_kernel(x.dtype)
    for r, c in [(0, 0), (3, 6), (5, 2)]:
        window = padded[:, r:r + kh, c:c + kw].numpy()
        window[:, kh // 2 + 1:] = 7.0  # rows below and pixels right of the centre: masked away
        window[:, kh // 2, kw // 2 + 1:] = 7.0
        step = layer.step(tf.constant(window), kernel)
        assert step.shape == (2, 1, 1, 6)
        np.testing.assert_allclose(step[:, 0, 0], full[:, r, c], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
@pytest.mark.parametrize("shape", ["grey", "rgb"])
@pytest.mark.parametrize("cls", [PixelCNN, GatedPixelCNN])
def test_cached_sampler_draws_exactly_the_naive_samples(cls, shape, temperature):
    image_shape, levels = SHAPES[shape]
    model = tiny(cls, image_shape, num_levels=levels)  # float32, every weight perturbed
    cached = assert_same_varied_images(model, temperature, seed=3)
    if cls is PixelCNN:  # the public API picks them
        np.testing.assert_array_equal(model.sample(8, temperature=temperature, seed=3), cached)
        np.testing.assert_array_equal(model.sample(8, temperature=temperature, seed=3, method="naive"), cached)


@pytest.mark.parametrize("cls,kwargs", [
    (PixelCNN, dict(num_blocks=3, kernel_size=5, first_kernel_size=7)),
    (GatedPixelCNN, dict(num_layers=4, kernel_size=5, first_kernel_size=7)),
])
def test_kernels_wider_than_the_image(cls, kwargs):
    # 7x7 and 5x5 masks on 4 columns: caches padded beyond both edges.
    model = tiny(cls, (4, 4, 3), num_levels=5, **kwargs)
    assert_same_varied_images(model, 1.0, seed=8)


def test_conditional_gated_pixelcnn_draws_the_naive_samples_for_given_and_drawn_labels():
    model = tiny(GatedPixelCNN, SHAPES["rgb"][0], num_levels=6, num_classes=3)
    for i, layer in enumerate(model.layers_):  # labels that matter: embeddings of unit scale
        if layer.vertical_output:  # the last layer has no V
            layer.v_cond.assign(tf.random.normal(layer.v_cond.shape, seed=i))
        layer.h_cond.assign(tf.random.normal(layer.h_cond.shape, seed=10 + i))
    by_label = assert_same_varied_images(model, 1.0, seed=5, labels=[0, 1, 2, 0, 1, 2, 2, 1])
    assert not np.array_equal(by_label, draw(model, "cached", 8, 1.0, 5, labels=[1] * 8))
    assert_same_varied_images(model, 0.7, seed=6)  # labels drawn from the seed
    np.testing.assert_array_equal(model.sample(8, temperature=1.0, seed=5, labels=[0, 1, 2, 0, 1, 2, 2, 1]), by_label)


@pytest.mark.parametrize("shape", ["grey", "rgb"])
@pytest.mark.parametrize("cls", [PixelCNN, GatedPixelCNN])
def test_position_bias_is_in_both_samplers_and_keeps_probabilities_normalized(cls, shape):
    image_shape, levels = SHAPES[shape]
    model = tiny(cls, image_shape, num_levels=levels, position_bias=True)  # the bias perturbed too
    assert np.abs(model.position_logits.numpy()).max() > 0
    assert_same_varied_images(model, 1.0, seed=5)
    small = tiny(cls, (1, 2, 2), num_levels=3, position_bias=True)
    every = np.stack(np.meshgrid(*[range(3)] * 4, indexing="ij"), -1).reshape(-1, 1, 2, 2).astype(np.uint8)
    np.testing.assert_allclose(np.exp(small.log_prob(every).numpy().astype(np.float64)).sum(), 1.0, rtol=1e-5)
