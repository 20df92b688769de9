"""Affine coupling (Dinh et al. 2017, eq. 9), with any binary mask.

    y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))
    log|det dy/dx| = sum over (1 - b) of s(b * x)

`b * y == b * x`, so the inverse computes the same s and t from `b * y`:

    x = b * y + (1 - b) * (y - t(b * y)) * exp(-s(b * y))

The conditioner is a callable (typically a Keras layer, which owns the weights)
mapping `b * x` to `(shift, log_scale)`, each the shape of x; `log_scale=None`
gives an additive coupling (NICE; Glow's additive variant). Entries of shift and
log_scale on the conditioning half are ignored.
"""

import tensorflow as tf

from zoo.bijectors.base import ZooBijector


class AffineCoupling(ZooBijector):
    """Elementwise affine map of the unmasked entries, conditioned on the masked ones.

    Args:
      mask: float32 tensor broadcastable to x `[batch, H, W, C]`, 1 = kept.
      conditioner: callable `b * x -> (shift, log_scale)` (log_scale may be None).
    Events are rank 3 `[H, W, C]`; log-dets are `[batch]`.
    """

    def __init__(self, mask, conditioner, validate_args=False, name="affine_coupling"):
        with tf.name_scope(name) as scope:
            self._mask = tf.convert_to_tensor(mask, tf.float32)
            self._conditioner = conditioner
            super().__init__(scope, validate_args, mask=mask, conditioner=conditioner)

    def _params(self, x):
        """(shift, log_scale) from the kept half `b * x`, zero on the kept half."""
        def compute(x):
            shift, log_scale = self._conditioner(x * self._mask)
            keep = 1.0 - self._mask
            shift = tf.cast(shift, tf.float32) * keep
            log_scale = None if log_scale is None else tf.cast(log_scale, tf.float32) * keep
            return shift, log_scale
        return self.memo(x, compute)

    def _forward(self, x):
        shift, log_scale = self._params(x)
        return (x if log_scale is None else x * tf.exp(log_scale)) + shift

    def _inverse(self, y):
        shift, log_scale = self._params(y)
        x = y - shift
        return x if log_scale is None else x * tf.exp(-log_scale)

    def _forward_log_det_jacobian(self, x):
        _, log_scale = self._params(x)
        if log_scale is None:
            return tf.zeros(tf.shape(x)[:1], tf.float32)
        return tf.reduce_sum(log_scale, axis=[-3, -2, -1])

    def _inverse_log_det_jacobian(self, y):
        return -self._forward_log_det_jacobian(y)
