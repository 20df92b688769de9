"""Cached PixelCNN++ sampling (`zoo.models.pixelcnnpp_sampling`) draws exactly the naive
loop's images: every cached convolution sees the numbers the whole network sees (16-bit
models: `test_fidelity.py`)."""

import numpy as np
import pytest

from tiny_models import tiny
from zoo.models import PixelCNNPlusPlus


def draw(model, method, n, temperature, seed, labels=None):
    """`n` images from the cached or the naive sampler, uint8 `[n, H, W, C]`."""
    return model.sample(n, labels=labels, temperature=temperature, seed=seed, method=method).numpy()


@pytest.mark.parametrize("image_shape,num_scales,weight_norm,num_classes", [
    ((8, 12, 1), 3, False, None),  # 8 x 12, 4 x 6, 2 x 3: rows and columns of every scale
    ((4, 6, 3), 2, True, 3),
], ids=["grey-3-scales", "rgb-weight-norm-labels"])
def test_cached_sampler_draws_exactly_the_naive_samples(image_shape, num_scales, weight_norm, num_classes):
    model = tiny(PixelCNNPlusPlus, image_shape, 16, nr_logistic_mix=3, num_scales=num_scales, dropout=0.5,
                 weight_norm=weight_norm, num_classes=num_classes)  # every bias, gate and label weight perturbed
    labels = [0, 2, 1] if num_classes else None
    for temperature in (1.0, 0.5):
        cached = draw(model, "cached", 3, temperature, 21, labels)
        assert len(np.unique(cached)) >= 8  # varied pixels: a wrong mixture would show
        np.testing.assert_array_equal(cached, draw(model, "naive", 3, temperature, 21, labels))
