"""Logit preprocessing of dequantized pixels (Dinh et al. 2017, section 4.1).

A pixel x in {0, ..., L-1} plus uniform noise u in [0, 1) gives v = x + u in [0, L).
The bijector maps it to the logit space the flow models,

    p = alpha + (1 - 2 alpha) * v / L,      y = logit(p),

    log|det dy/dv| = sum_d [log((1 - 2 alpha) / L) - log p_d - log(1 - p_d)],

so `log N(f(y)) + log-dets` is the density of (x + u) / L minus D log L: the bits/dim
on the original pixel scale that the papers report.
"""

import math
import numbers

import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors


def check_alpha(alpha):
    """`alpha` as a float, or a ValueError unless 0 <= alpha < 0.5 (p must stay inside (0, 1))."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha < 0.5:
        raise ValueError(f"alpha must be a number in [0, 0.5), got {alpha!r}.")
    return float(alpha)


class LogitPreprocess(tfb.Bijector):
    """`v in [0, L)` -> `logit(alpha + (1 - 2 alpha) v / L)`, elementwise. Events rank 3."""

    def __init__(self, num_levels, alpha=0.05, validate_args=False, name="logit_preprocess"):
        parameters = dict(locals())
        alpha = check_alpha(alpha)
        self._num_levels = float(num_levels)
        self._alpha = alpha
        self._log_slope = math.log((1.0 - 2.0 * alpha) / num_levels)
        super().__init__(forward_min_event_ndims=3, validate_args=validate_args,
                         parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    def _forward(self, v):
        p = self._alpha + (1.0 - 2.0 * self._alpha) * v / self._num_levels
        return tf.math.log(p) - tf.math.log1p(-p)

    def _inverse(self, y):
        return (tf.sigmoid(y) - self._alpha) / (1.0 - 2.0 * self._alpha) * self._num_levels

    def _inverse_log_det_jacobian(self, y):
        # dv/dy = L / (1 - 2 alpha) * sigmoid(y) * sigmoid(-y)
        return tf.reduce_sum(tf.math.log_sigmoid(y) + tf.math.log_sigmoid(-y) - self._log_slope,
                             axis=[-3, -2, -1])

    def _forward_log_det_jacobian(self, v):
        return -self._inverse_log_det_jacobian(self._forward(v))
