"""Cached PixelCNN++ sampling (`zoo.models.pixelcnnpp_sampling`) draws exactly the naive
loop's images: every cached convolution sees the numbers the whole network sees."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from causality import perturb_weights

from zoo.models import PixelCNNPlusPlus


def draw(model, method, n, temperature, seed, labels=None):
    """`n` images from the cached or the naive compiled sampler, `[n, H, W, C]` int32."""
    graph = model._sample_graph if method == "cached" else model._sample_naive_graph
    extra = [] if labels is None else [tf.constant(labels, tf.int32)]
    return graph(*model._sample_arguments(n, temperature, seed), *extra).numpy()


@pytest.mark.parametrize("image_shape,num_scales,weight_norm,num_classes", [
    ((8, 12, 1), 3, False, None),  # 8 x 12, 4 x 6, 2 x 3: rows and columns of every scale
    ((4, 6, 3), 2, True, 3),
], ids=["grey-3-scales", "rgb-weight-norm-labels"])
def test_cached_sampler_draws_exactly_the_naive_samples(image_shape, num_scales, weight_norm, num_classes):
    keras.utils.set_random_seed(0)
    model = PixelCNNPlusPlus(image_shape, 16, nr_resnet=1, nr_filters=8, nr_logistic_mix=3,
                             num_scales=num_scales, dropout=0.5, weight_norm=weight_norm,
                             num_classes=num_classes).build_for_images()
    perturb_weights(model, 0.1, seed=3)  # every bias, gate and label weight non-zero
    labels = [0, 2, 1] if num_classes else None
    for temperature in (1.0, 0.5):
        cached = draw(model, "cached", 3, temperature, 21, labels)
        assert len(np.unique(cached)) >= 8  # varied pixels: a wrong mixture would show
        np.testing.assert_array_equal(cached, draw(model, "naive", 3, temperature, 21, labels))


def test_bfloat16_samplers_agree_on_most_images():
    """In bfloat16 the two samplers' graphs round differently (see the PixelCNN's
    test): most images are identical, not all."""
    keras.utils.set_random_seed(0)
    model = PixelCNNPlusPlus((6, 6, 1), 16, nr_resnet=1, nr_filters=8, nr_logistic_mix=3, num_scales=2,
                             dropout=0.0, weight_norm=False, mixed_precision="bfloat16").build_for_images()
    perturb_weights(model, 0.1, seed=3)
    cached, naive = draw(model, "cached", 16, 1.0, 4), draw(model, "naive", 16, 1.0, 4)
    identical = np.mean([np.array_equal(a, b) for a, b in zip(cached, naive)])
    assert identical >= 0.75, f"only {identical:.0%} of images identical"
    assert len(np.unique(cached)) >= 8
