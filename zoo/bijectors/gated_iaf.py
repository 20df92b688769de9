"""The numerically stable IAF step (Kingma et al., "Improved Variational Inference
with Inverse Autoregressive Flow", NeurIPS 2016, section 4 and its LSTM-like update),
amortized through a MADE's context:

    [m, s] = MADE(z, context = h),      sigma = sigmoid(s + forget_bias)
    z' = sigma * z + (1 - sigma) * m,   log|det dz'/dz| = sum_d log sigma_d

Output d depends on z_<d only, so the Jacobian is triangular with diagonal sigma.
"""

import tensorflow as tf

from zoo.bijectors.base import ZooBijector


class GatedIAF(ZooBijector):
    """One IAF step. Events rank 1: z `[batch, D]`; log-dets `[batch]`.

    Args:
      made: a `zoo.layers.MADE` with `num_params=2` and a context: `made(z, context=...,
        training=...) -> [batch, D, 2]` (m, s).
      context: `[batch, context_size]`, the encoder's features h.
      forget_bias: added to s, so a step starts near the identity (sigma near 1).
      training: passed to the MADE (dropout).
    Forward is one MADE pass (shared with its log-det); the inverse is D passes of the
    fixed point z <- (z' - (1 - sigma(z)) m(z)) / sigma(z), exact after D passes since
    dimension d's sigma and m depend only on the dimensions before it.
    """

    event_ndims = 1

    def __init__(self, made, context, forget_bias=1.0, training=False, validate_args=False, name="gated_iaf"):
        with tf.name_scope(name) as scope:
            self._made, self._context = made, context
            self._forget_bias, self._training = forget_bias, training
            super().__init__(scope, validate_args, made=made, context=context, forget_bias=forget_bias,
                             training=training)

    def _params(self, z):
        """(m, s + forget_bias), each `[batch, D]` in z's dtype."""
        def compute(z):
            out = tf.cast(self._made(z, context=self._context, training=self._training), z.dtype)
            return out[..., 0], out[..., 1] + self._forget_bias
        return self.memo(z, compute)

    def _forward(self, z):
        m, s = self._params(z)
        sigma = tf.sigmoid(s)
        return sigma * z + (1.0 - sigma) * m

    def _forward_log_det_jacobian(self, z):
        return tf.reduce_sum(tf.math.log_sigmoid(self._params(z)[1]), -1)

    def _inverse(self, y):
        z = y
        for _ in range(y.shape[-1]):
            m, s = self._params(z)
            sigma = tf.sigmoid(s)
            z = (y - (1.0 - sigma) * m) / sigma
        return z

    def _inverse_log_det_jacobian(self, y):
        return -self._forward_log_det_jacobian(self._inverse(y))
