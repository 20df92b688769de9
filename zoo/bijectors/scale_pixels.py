"""Glow's pixel scaling (openai/glow `preprocess`): dequantized pixels v = x + u in
[0, L) to [-1/2, 1/2),

    y = v / L - 1/2,      log|det dy/dv| = -D log L,

so the flow's density of y gives the bits/dim on the original pixel scale. (TFP's
`Shift` and `Scale` compute the same map, but their log-det is one scalar, not the
zoo's `[batch]`.)
"""

import math

import tensorflow as tf

from zoo.bijectors.base import ZooBijector


class ScalePixels(ZooBijector):
    """`v in [0, L)` -> `v / L - 1/2`, elementwise. Events rank 3."""

    constant_jacobian = True

    def __init__(self, num_levels, validate_args=False, name="scale_pixels"):
        self._num_levels = float(num_levels)
        super().__init__(name, validate_args, num_levels=num_levels)

    def _forward(self, v):
        return v / self._num_levels - 0.5

    def _inverse(self, y):
        return (y + 0.5) * self._num_levels

    def _log_det(self, x):
        dims = tf.cast(tf.reduce_prod(tf.shape(x)[-3:]), tf.float32)
        return tf.fill(tf.shape(x)[:1], -dims * math.log(self._num_levels))

    def _forward_log_det_jacobian(self, v):
        return self._log_det(v)

    def _inverse_log_det_jacobian(self, y):
        return -self._log_det(y)
