"""Distribution augmentation (Jun, Child, Chen, Schulman, Ramesh, Radford and Sutskever
2020, "Distribution Augmentation for Generative Modeling", ICML).

A model trained on transformed images t(x), t drawn from a fixed set T and given to the
network as a condition, learns one density per transform with shared weights:

    max_theta  E_x E_{t ~ U(T)} log p_theta(t(x) | t),

and is evaluated and sampled with t = identity, log p_theta(x | identity): an exact
likelihood of the data, regularized by the other transforms' tasks. The transforms here
are the eight symmetries of the square (rotations, flips, transposes), each a
permutation of pixel positions: they keep the pixel values and the colours.

Each p_theta(t(x) | t) is then also a normalized density of x itself, one per pixel
ordering (raster order read from another corner or along columns), and so is their
uniform mixture, an ensemble over orderings that shares one network (Uria, Murray and
Larochelle 2014, "A Deep and Tractable Density Estimator", ICML):

    p(x) = (1 / |T|) sum_{t in T} p_theta(t(x) | t).
"""

import tensorflow as tf

# Each maps `[b, H, W, C]` to `[b, H, W, C]` (H == W for those that swap the axes);
# rotations counter-clockwise, as `tf.image.rot90`'s, spelled as reverses and transposes
# (rot90 builds a graph of every k's branch, int32 transposes that oneDNN logs against).
TRANSFORMS = {
    "identity": lambda x: x,
    "rot90": lambda x: tf.reverse(tf.transpose(x, [0, 2, 1, 3]), [1]),
    "rot180": lambda x: tf.reverse(x, [1, 2]),
    "rot270": lambda x: tf.transpose(tf.reverse(x, [1]), [0, 2, 1, 3]),
    "flip_lr": lambda x: tf.reverse(x, [2]),
    "flip_ud": lambda x: tf.reverse(x, [1]),
    "transpose": lambda x: tf.transpose(x, [0, 2, 1, 3]),
    "antitranspose": lambda x: tf.transpose(tf.reverse(x, [1, 2]), [0, 2, 1, 3]),
}
SWAP_AXES = {"rot90", "rot270", "transpose", "antitranspose"}
INVERSES = {"rot90": "rot270", "rot270": "rot90"}  # every other transform undoes itself


def inverses(names):
    """The transforms that undo `names`, in the same order."""
    return tuple(INVERSES.get(name, name) for name in names)


def check_augmentations(names, image_shape):
    """Validates a list of transform names; returns them as a tuple (None: no augmentation).

    The first must be "identity" (the condition the data is evaluated under); names may not
    repeat; transforms that swap height and width need square images.
    """
    if names is None:
        return None
    if isinstance(names, str):
        raise ValueError(f"augmentations must be a list of transform names, got the string {names!r}.")
    names = tuple(names)
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise ValueError(f"Unknown augmentations {unknown}; expected names from {sorted(TRANSFORMS)}.")
    if len(names) < 2 or names[0] != "identity":
        raise ValueError(f"augmentations must start with 'identity' and name at least one other "
                         f"transform, got {list(names)}.")
    if len(set(names)) != len(names):
        raise ValueError(f"augmentations must not repeat a transform, got {list(names)}.")
    swapping = sorted(SWAP_AXES.intersection(names))
    if swapping and image_shape[0] != image_shape[1]:
        raise ValueError(f"augmentations {swapping} swap height and width: they need square images, "
                         f"got image_shape {tuple(image_shape)}.")
    return names


def every_transform(images, names):
    """Each image under each of `names`: `[b, H, W, C]` -> `[b, T, H, W, C]`."""
    return tf.stack([TRANSFORMS[name](images) for name in names], axis=1)


def apply_transforms(images, ids, names):
    """Image i transformed by `names[ids[i]]`: `[b, H, W, C]`, int `[b]` -> `[b, H, W, C]`."""
    return tf.gather(every_transform(images, names), ids, axis=1, batch_dims=1)
