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
