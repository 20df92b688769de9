"""Planar flow (Rezende and Mohamed 2015, "Variational Inference with Normalizing
Flows", section 4.1, eq. 10-12 and appendix A.1), amortized: one set of parameters
per example.

    f(z) = z + u_hat h(w^T z + b),      h = tanh
    log|det df/dz| = log|1 + u_hat^T h'(w^T z + b) w|                      (eq. 12)

with the appendix's fix that makes f invertible for any raw u:

    u_hat = u + (m(w^T u) - w^T u) w / ||w||^2,      m(a) = -1 + softplus(a)

so w^T u_hat = m(w^T u) > -1 and a = w^T z solves the strictly increasing scalar
equation w^T f(z) = a + (w^T u_hat) h(a + b). The inverse solves it by bisection
(to the dtype's rounding) and subtracts: z = y - u_hat h(a + b).
"""

import tensorflow as tf

from zoo.bijectors.base import ZooBijector


def bisect(fn, target, low, high, iterations=64):
    """The root of `fn(a) = target` for `fn` increasing elementwise, in `[low, high]`
    (tensors of one shape); `iterations` halvings of the bracket, then one Newton step
    from the (gradient-stopped) root, so gradients are the implicit function's."""
    def body(i, low, high):
        mid = 0.5 * (low + high)
        below = fn(mid) < target
        return i + 1, tf.where(below, mid, low), tf.where(below, high, mid)

    _, low, high = tf.while_loop(lambda i, *_: i < iterations, body,
                                 (tf.constant(0), tf.stop_gradient(low), tf.stop_gradient(high)))
    root = tf.stop_gradient(0.5 * (low + high))
    with tf.GradientTape() as tape:
        tape.watch(root)
        value = fn(root)
    return root - (value - target) / tape.gradient(value, root)


def invertible_u(u, w):
    """u_hat `[batch, D]` from raw u and w `[batch, D]`: w^T u_hat = -1 + softplus(w^T u)."""
    wu = tf.reduce_sum(w * u, -1, keepdims=True)
    m = -1.0 + tf.math.softplus(wu)
    return u + tf.math.divide_no_nan((m - wu) * w, tf.reduce_sum(tf.square(w), -1, keepdims=True))


class Planar(ZooBijector):
    """One planar flow. Events rank 1: z `[batch, D]`; log-dets `[batch]`.

    Args:
      u: raw `[batch, D]` (made invertible here, any values allowed).
      w: `[batch, D]` (w = 0: u_hat = u, a shift).
      b: `[batch]` (or `[batch, 1]`).
    The parameters are cast to the input's dtype.
    """

    event_ndims = 1

    def __init__(self, u, w, b, validate_args=False, name="planar"):
        with tf.name_scope(name) as scope:
            self._u, self._w, self._b = u, w, b
            super().__init__(scope, validate_args, u=u, w=w, b=b)

    def _params(self, dtype):
        """(u_hat [batch, D], w [batch, D], b [batch, 1]) in `dtype`."""
        u, w = tf.cast(self._u, dtype), tf.cast(self._w, dtype)
        b = tf.reshape(tf.cast(self._b, dtype), [-1, 1])
        return invertible_u(u, w), w, b

    def _forward(self, z):
        u_hat, w, b = self._params(z.dtype)
        return z + u_hat * tf.tanh(tf.reduce_sum(w * z, -1, keepdims=True) + b)

    def _forward_log_det_jacobian(self, z):
        u_hat, w, b = self._params(z.dtype)
        dh = 1.0 - tf.square(tf.tanh(tf.reduce_sum(w * z, -1, keepdims=True) + b))  # [batch, 1]
        return tf.math.log(tf.abs(1.0 + dh[..., 0] * tf.reduce_sum(u_hat * w, -1)))

    def _inverse(self, y):
        u_hat, w, b = self._params(y.dtype)
        wy, wu = tf.reduce_sum(w * y, -1), tf.reduce_sum(w * u_hat, -1)  # a + wu h(a + b) = wy
        slack = tf.abs(wu)
        a = bisect(lambda a: a + wu * tf.tanh(a + b[..., 0]), wy, wy - slack - 1.0, wy + slack + 1.0)
        return y - u_hat * tf.tanh(a[:, None] + b)

    def _inverse_log_det_jacobian(self, y):
        return -self._forward_log_det_jacobian(self._inverse(y))
