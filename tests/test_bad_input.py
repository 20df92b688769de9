"""The DensityModel contract's refusals: clear ValueErrors that name what was expected."""

import numpy as np
import pytest

from zoo.models import ARM


@pytest.fixture(scope="module")
def model():
    return ARM(image_shape=(4, 4, 1), num_levels=3, filters=4, kernel_size=2,
               dilations=[1]).build_for_images()


@pytest.mark.parametrize("images,match", [
    (np.zeros((2, 4, 4, 1), np.float32), "integer images"),
    (np.zeros((2, 4, 4, 1), bool), "integer images"),
    (np.full((2, 4, 4, 1), 3, np.uint8), r"\[0, 3\)"),
    (np.full((2, 4, 4, 1), -1, np.int32), r"\[0, 3\)"),
    (np.zeros((4, 4, 1), np.uint8), "rank 4"),
    (np.zeros((2, 5, 4, 1), np.uint8), r"shape \[batch, 4, 4, 1\]"),
    (np.zeros((2, 4, 4, 3), np.uint8), r"shape \[batch, 4, 4, 1\]"),
])
@pytest.mark.parametrize("method", ["log_prob", "bits_per_dim"])
def test_bad_images_are_refused(model, method, images, match):
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(images)


@pytest.mark.parametrize("kwargs,match", [
    ({"n": 0}, "positive integer"),
    ({"n": -3}, "positive integer"),
    ({"n": 2.5}, "positive integer"),
    ({"n": 2, "temperature": -0.1}, "temperature"),
    ({"n": 2, "temperature": float("nan")}, "temperature"),
    ({"n": 2, "seed": -1}, "seed"),
    ({"n": 2, "seed": 1.5}, "seed"),
])
def test_bad_sample_arguments_are_refused(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        model.sample(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"image_shape": (4, 4), "num_levels": 3}, "image_shape"),
    ({"image_shape": (4, 4, 1), "num_levels": 1}, "num_levels"),
    ({"image_shape": (4, 4, 1), "num_levels": 3, "dilations": []}, "dilations"),
])
def test_bad_configs_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ARM(**kwargs)
