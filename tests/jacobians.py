"""Log-determinants by brute force: the full Jacobian, then a float64 slogdet."""

import numpy as np
import tensorflow as tf


def brute_force_log_det(bijector_fn, x):
    """log|det dy/dx| per example of `x [n, ...]`, `y = bijector_fn().forward(x)`, from
    the full `[n, D, D]` Jacobian (float64 slogdet). `bijector_fn` builds a fresh bijector,
    as the models do per call."""
    x = tf.constant(x)
    n, shape = x.shape[0], x.shape[1:]
    flat = tf.reshape(x, [n, -1])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        y = tf.reshape(bijector_fn().forward(tf.reshape(flat, [n, *shape])), [n, -1])
    jac = tape.batch_jacobian(y, flat)
    assert jac.shape == (n, flat.shape[1], flat.shape[1])
    return np.linalg.slogdet(jac.numpy().astype(np.float64))[1]
