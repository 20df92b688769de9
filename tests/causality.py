"""Causality by gradients: which inputs each output of a network can see."""

import numpy as np
import tensorflow as tf


def perturb_weights(model, scale=0.1, seed=3):
    """Adds Gaussian noise to every trainable weight, so that no path is cut only because
    a bias, gate or embedding starts at zero (a zero gradient then means no path at all).
    Small enough that no tanh or sigmoid saturates in float32."""
    for v in model.trainable_variables:
        v.assign(v + tf.random.normal(v.shape, seed=seed) * scale)


def abs_jacobian(fn, x):
    """`sum_batch |d fn(x)[b, i] / d x[b, j]|` as `[*fn(x).shape[1:], *x.shape[1:]]`, float64.

    `fn` maps a batch to a batch, sample by sample; use a batch of varied inputs (e.g. 16
    uniform draws) so that no path is zero only because some unit is inactive."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return np.abs(tape.batch_jacobian(y, x).numpy().astype(np.float64)).sum(axis=0)


def _flat_dims(model, labels):
    """ARM: scaled images `[b, H, W, C]` -> logits `[b, D, L]`, raster-then-channel."""
    del labels
    return lambda x: model.logits_from_inputs(tf.reshape(x, [-1, model.num_dims, 1]))


def _pixel_logits(model, labels):
    """PixelCNNs: scaled images -> logits `[b, D, L]`, raster-then-colour."""
    return lambda x: tf.reshape(model.logits_from_inputs(x, labels), [tf.shape(x)[0], model.num_dims, -1])


def _pixel_mixtures(model, labels):
    """PixelCNN++: scaled images -> mixture parameters per pixel `[b, H W, N]` (colours
    within a pixel depend on each other through the mixture's coefficients)."""
    h, w, _ = model.image_shape
    return lambda x: tf.reshape(model.params_from_inputs(x, labels), [tf.shape(x)[0], h * w, -1])


# Autoregressive family -> (network given its scaled inputs and labels, one position per
# pixel (True) or per scalar (False)). Flows are not listed: their log-dets are tested.
CONDITIONALS = {
    "ARM": (_flat_dims, False),
    "PixelCNN": (_pixel_logits, False),
    "GatedPixelCNN": (_pixel_logits, False),
    "PixelCNNPlusPlus": (_pixel_mixtures, True),
}


def position_jacobian(model, labels=None, batch=16):
    """`[P, P]`: how much the parameters of conditional i depend on input position j, summed
    over a batch of `batch` uniform inputs in [-2, 2] (so that no path is zero only because
    a unit is inactive); positions in the model's order (scalars or pixels)."""
    make, per_pixel = CONDITIONALS[type(model).__name__]
    x = tf.random.uniform([batch, *model.image_shape], -2, 2, seed=2)
    jac = abs_jacobian(make(model, labels), x).sum(axis=1)  # [P, H, W, C]
    if per_pixel:
        jac = jac.sum(axis=-1)
    return jac.reshape(jac.shape[0], -1)
