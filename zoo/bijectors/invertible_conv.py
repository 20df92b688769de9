"""Invertible 1x1 convolution (Kingma and Dhariwal 2018, section 3.2, eq. 9-10).

A learned channel mixing applied at every pixel, `y[b, h, w] = x[b, h, w] @ W`:

    log|det dy/dx| = H * W * log|det W|

Plain form: W is free and log|det W| comes from `slogdet` (in float64).
LU form (eq. 10): W = P L (U + diag(sign(s) * exp(log|s|))), with P a fixed
permutation, L unit lower triangular, U strictly upper triangular, sign(s) fixed;
then log|det W| = sum log|s|, in O(C) instead of O(C^3). `lu_weight` recomposes W
from those factors (the Keras layer `zoo.layers.Invertible1x1ConvWeight` holds
them); the bijector only does the math.
"""

import tensorflow as tf

from zoo.bijectors.base import ZooBijector


def lu_weight(permutation, lower, upper, sign_s, log_s):
    """W = P L (U + diag(sign_s * exp(log_s))) and log|det W| = sum(log_s).

    `lower`/`upper` may hold anything on and above/below their diagonal: only the
    strictly lower/upper triangle is used (L gets a unit diagonal).
    Returns (W float32 `[C, C]`, log|det W| float32 scalar).
    """
    lower = tf.linalg.band_part(lower, -1, 0) - tf.linalg.band_part(lower, 0, 0)
    lower += tf.eye(tf.shape(lower)[0], dtype=lower.dtype)
    upper = tf.linalg.band_part(upper, 0, -1) - tf.linalg.band_part(upper, 0, 0)
    upper += tf.linalg.diag(sign_s * tf.exp(log_s))
    return permutation @ lower @ upper, tf.reduce_sum(log_s)


class Invertible1x1Conv(ZooBijector):
    """`x @ W` over the channels of every pixel. Events rank 3 `[H, W, C]`.

    Args:
      weight: float32 `[C, C]`.
      log_abs_det: float32 scalar log|det W| if known (the LU form); None computes
        it by `slogdet`.
    """

    def __init__(self, weight, log_abs_det=None, validate_args=False, name="invertible_1x1_conv"):
        self._weight = tf.cast(weight, tf.float32)
        self._log_abs_det = log_abs_det
        super().__init__(name, validate_args, weight=weight, log_abs_det=log_abs_det)

    def _mix(self, x, weight):
        """`x @ weight` per pixel, `[..., H, W, C]`. A 1 x 1 convolution where the batch is
        known to be one axis: oneDNN runs it faster than the same product as an einsum (a
        batched matmul of few channels); an einsum otherwise."""
        if x.shape.rank == 4:
            return tf.nn.conv2d(x, weight[None, None], strides=1, padding="VALID")
        return tf.einsum("...c,cd->...d", x, weight)

    def _weight_log_det(self, x):
        """H * W * log|det W|, `[batch]`."""
        if self._log_abs_det is None:
            log_abs_det = tf.cast(tf.linalg.slogdet(tf.cast(self._weight, tf.float64))[1],
                                  tf.float32)
        else:
            log_abs_det = tf.cast(self._log_abs_det, tf.float32)
        pixels = tf.cast(tf.reduce_prod(tf.shape(x)[-3:-1]), tf.float32)
        return tf.fill(tf.shape(x)[:1], pixels * log_abs_det)

    def _forward(self, x):
        return self._mix(x, self._weight)

    def _inverse(self, y):
        inverse = tf.cast(tf.linalg.inv(tf.cast(self._weight, tf.float64)), tf.float32)
        return self._mix(y, inverse)

    def _forward_log_det_jacobian(self, x):
        return self._weight_log_det(x)

    def _inverse_log_det_jacobian(self, y):
        return -self._weight_log_det(y)
