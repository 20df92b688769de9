"""Glow's pixel scaling (openai/glow `preprocess`): dequantized pixels v = x + u in
[0, L) to [-1/2, 1/2),

    y = v / L - 1/2,      log|det dy/dv| = -D log L,

so the flow's density of y gives the bits/dim on the original pixel scale.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors


class ScalePixels(tfb.Bijector):
    """`v in [0, L)` -> `v / L - 1/2`, elementwise. Events rank 3."""

    def __init__(self, num_levels, validate_args=False, name="scale_pixels"):
        parameters = dict(locals())
        self._num_levels = float(num_levels)
        super().__init__(forward_min_event_ndims=3, is_constant_jacobian=True,
                         validate_args=validate_args, parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

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
