"""Checks on the images and models an OOD score is given: one-line `ValueError`s that
say what was expected."""

import numpy as np

from zoo.models.base import check_image_array


def check_images(images, model, what="images"):
    """`images` as an integer array `[n, H, W, C]` that `model` can score: its image
    shape, values in `[0, model.num_levels)`, n >= 1 (`check_image_array`)."""
    return check_image_array(images, model.image_shape, model.num_levels, what)


def check_same_shape(in_images, out_images):
    """In- and out-of-distribution sets must be images of one shape (a detector scores
    both with the same model)."""
    a, b = np.shape(in_images)[1:], np.shape(out_images)[1:]
    if tuple(a) != tuple(b):
        raise ValueError(f"In- and out-of-distribution images must have one shape [n, H, W, C]: "
                         f"got [n, {', '.join(map(str, a))}] and [n, {', '.join(map(str, b))}].")


def check_background(model, background):
    """A likelihood ratio compares two models of the same images: same image shape and
    number of levels."""
    if tuple(background.image_shape) != tuple(model.image_shape) or background.num_levels != model.num_levels:
        raise ValueError(f"The background model must model the model's images: expected image shape "
                         f"{tuple(model.image_shape)} with {model.num_levels} levels, got "
                         f"{tuple(background.image_shape)} with {background.num_levels}.")
