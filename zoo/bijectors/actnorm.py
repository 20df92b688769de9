"""Activation normalization (Kingma and Dhariwal 2018, section 3.1, Table 1).

    y = (x + b) * exp(s),      log|det dy/dx| = H * W * sum_c s_c

with per-channel bias b and log-scale s. The parameters live in a Keras layer
(`zoo.layers.ActNormParams`, which also does the data-dependent initialization);
this bijector only does the math, from tensors. Parameters of shape `[C]` or
`[batch, 1, 1, C]` (a class-conditional prior) both work.
"""

import tensorflow as tf

from zoo.bijectors.base import ZooBijector


class ActNorm(ZooBijector):
    """Per-channel affine map. Events rank 3 `[H, W, C]`.

    Args:
      params: `(bias, log_scale)` float32 tensors broadcastable to `[batch, H, W, C]`.
    """

    def __init__(self, params, validate_args=False, name="actnorm"):
        self._bias, self._log_scale = (tf.cast(p, tf.float32) for p in params)
        super().__init__(name, validate_args, params=params)

    def _forward(self, x):
        return (x + self._bias) * tf.exp(self._log_scale)

    def _inverse(self, y):
        return y * tf.exp(-self._log_scale) - self._bias

    def _forward_log_det_jacobian(self, x):
        return tf.reduce_sum(self._log_scale + tf.zeros_like(x), axis=[-3, -2, -1])

    def _inverse_log_det_jacobian(self, y):
        return -tf.reduce_sum(self._log_scale + tf.zeros_like(y), axis=[-3, -2, -1])
