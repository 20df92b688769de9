"""Householder flow (Tomczak and Welling 2016, "Improving Variational Auto-Encoders
using Householder Flow", section 3), amortized: one vector per example.

    H(v) = I - 2 v v^T / ||v||^2,      z' = H(v) z

A reflection is orthogonal and symmetric: volume preserving (log|det| = 0) and its own
inverse. T reflections `z_T = H_T ... H_1 z_0` are `householder_flow`; their
product as a matrix (the Householder-Sylvester flow's Q) is `householder_product`.
"""

import tensorflow as tf
import tensorflow_probability as tfp

from zoo.bijectors.base import ZooBijector

tfb = tfp.bijectors


def reflect(v, z):
    """H(v) z for v, z `[batch, D]` (or broadcastable: v `[batch, 1, D]`, z `[batch, n, D]`);
    v = 0 gives the identity."""
    return z - tf.math.divide_no_nan(2.0 * v * tf.reduce_sum(v * z, -1, keepdims=True),
                                     tf.reduce_sum(tf.square(v), -1, keepdims=True))


def householder_product(vs):
    """`Q = H(v_1) H(v_2) ... H(v_T)` `[batch, D, D]` from vs `[batch, T, D]`: orthogonal."""
    d = tf.shape(vs)[-1]
    q = tf.eye(d, batch_shape=tf.shape(vs)[:1], dtype=vs.dtype)  # rows e_i^T; each step q <- q H
    for t in range(vs.shape[1]):
        q = reflect(vs[:, t:t + 1, :], q)  # row-wise (H is symmetric): rows of q H
    return q


class Householder(ZooBijector):
    """One reflection `z' = H(v) z`. Events rank 1: z `[batch, D]`; log-dets `[batch]` zeros.

    Args:
      v: `[batch, D]` (v = 0: the identity); cast to the input's dtype.
    """

    event_ndims = 1

    def __init__(self, v, validate_args=False, name="householder"):
        with tf.name_scope(name) as scope:
            self._v = v
            super().__init__(scope, validate_args, v=v)

    def _forward(self, z):
        return reflect(tf.cast(self._v, z.dtype), z)

    _inverse = _forward

    def _forward_log_det_jacobian(self, z):
        return tf.zeros(tf.shape(z)[:-1], z.dtype)

    _inverse_log_det_jacobian = _forward_log_det_jacobian


def householder_flow(vs, name="householder_flow"):
    """T reflections as a `tfb.Chain`, z -> H(v_T) ... H(v_1) z; vs `[batch, T, D]`."""
    return tfb.Chain([Householder(vs[:, t], name=f"householder{t}")
                      for t in reversed(range(vs.shape[1]))], name=name)
