"""Sylvester normalizing flow (van den Berg, Hasenclever, Tomczak and Welling 2018,
"Sylvester Normalizing Flows for Variational Inference", UAI 2018, section 3),
amortized: one set of parameters per example.

    z' = z + Q R h(R~ Q^T z + b),      h = tanh
    log|det dz'/dz| = sum_i log|1 + R~_ii R_ii h'(R~ Q^T z + b)_i|

Q `[D, M]` has orthonormal columns (M <= D), R and R~ `[M, M]` are upper triangular.
The log-det is Sylvester's determinant identity, det(I_D + Q R H' R~ Q^T) =
det(I_M + H' R~ R), which is triangular. With the diagonals `tanh`-bounded
(`bounded_triangular`), |R_ii R~_ii| < 1 = 1 / sup|h'|, so every factor is positive
and the flow is invertible (section 3.1). Q comes from

  - an unconstrained matrix orthogonalized iteratively (O-SNF):
    Q <- Q (I + (I - Q^T Q) / 2), after scaling Q to unit Frobenius norm (`orthogonalize`);
  - a product of Householder reflections (H-SNF; `zoo.bijectors.householder_product`);
  - the identity or the reversal permutation, alternating between flows (T-SNF; `reversal`).

The inverse keeps z's part orthogonal to Q's columns (z' - z lies in their span) and
solves the triangular system Q^T z' = v + R h(R~ v + b) for v = Q^T z by back
substitution, one monotone scalar equation per coordinate (bisection).
"""

import tensorflow as tf

from zoo.bijectors.base import ZooBijector
from zoo.bijectors.planar import bisect


def orthogonalize(a, steps=30):
    """Q `[..., D, M]` with orthonormal columns from a full-rank `a [..., D, M]` (M <= D):
    a / ||a||_F, then `steps` iterations of Q <- Q (I + (I - Q^T Q) / 2) (van den Berg et
    al. 2018, section 4.1). Each maps every singular value s -> s (3 - s^2) / 2, towards
    1 from (0, 1]: a value s reaches 1 within float32 rounding in about log(1/s) / log(1.5)
    + 5 steps, so 30 cover s >= 1e-4; the span is a's. A fixed count, unrolled: the
    gradient of a data-dependent `tf.while_loop` fails inside Keras' train step."""
    q = a / tf.norm(a, axis=[-2, -1], keepdims=True)
    eye = tf.eye(a.shape[-1], dtype=a.dtype)
    for _ in range(int(steps)):
        q = tf.matmul(q, eye + 0.5 * (eye - tf.matmul(q, q, transpose_a=True)))
    return q


def bounded_triangular(full, raw_diag):
    """R `[..., M, M]`: the strict upper triangle of `full [..., M, M]` and `tanh(raw_diag
    [..., M])` on the diagonal, so |R_ii| < 1."""
    strict = tf.linalg.band_part(full, 0, -1) - tf.linalg.band_part(full, 0, 0)
    return strict + tf.linalg.diag(tf.tanh(raw_diag))


def reversal(size, dtype=tf.float32):
    """The reversal permutation matrix `[size, size]` (its own inverse and transpose)."""
    return tf.reverse(tf.eye(size, dtype=dtype), axis=[0])


class Sylvester(ZooBijector):
    """One Sylvester flow. Events rank 1: z `[batch, D]`; log-dets `[batch]`.

    Args:
      q: `[batch, D, M]` or `[D, M]`, orthonormal columns (not checked).
      r, r_tilde: `[batch, M, M]` upper triangular (entries below the diagonal ignored),
        with |R_ii R~_ii| < 1 for invertibility (`bounded_triangular` gives it).
      b: `[batch, M]`.
    The parameters are cast to the input's dtype.
    """

    event_ndims = 1

    def __init__(self, q, r, r_tilde, b, validate_args=False, name="sylvester"):
        with tf.name_scope(name) as scope:
            self._q, self._r, self._r_tilde, self._b = q, r, r_tilde, b
            super().__init__(scope, validate_args, q=q, r=r, r_tilde=r_tilde, b=b)

    def _params(self, dtype):
        q, r, r_tilde, b = (tf.cast(t, dtype) for t in (self._q, self._r, self._r_tilde, self._b))
        return q, tf.linalg.band_part(r, 0, -1), tf.linalg.band_part(r_tilde, 0, -1), b

    def _pre(self, z):
        """(params, R~ Q^T z + b `[batch, M]`)."""
        q, r, r_tilde, b = params = self._params(z.dtype)
        return params, tf.linalg.matvec(r_tilde, tf.linalg.matvec(q, z, adjoint_a=True)) + b

    def _forward(self, z):
        (q, r, _, _), pre = self._pre(z)
        return z + tf.linalg.matvec(q, tf.linalg.matvec(r, tf.tanh(pre)))

    def _forward_log_det_jacobian(self, z):
        (_, r, r_tilde, _), pre = self._pre(z)
        diag = tf.linalg.diag_part(r) * tf.linalg.diag_part(r_tilde)
        return tf.reduce_sum(tf.math.log(tf.abs(1.0 + diag * (1.0 - tf.square(tf.tanh(pre))))), -1)

    def _inverse(self, y):
        q, r, r_tilde, b = self._params(y.dtype)
        w = tf.linalg.matvec(q, y, adjoint_a=True)  # = v + R h(R~ v + b), v = Q^T z
        size = w.shape[-1]
        v, h = [None] * size, [None] * size  # coordinates of v and h(pre), solved last first
        for i in reversed(range(size)):
            later = range(i + 1, size)
            c = b[..., i] + sum((r_tilde[..., i, j] * v[j] for j in later), tf.zeros_like(w[..., i]))
            target = w[..., i] - sum((r[..., i, j] * h[j] for j in later), tf.zeros_like(w[..., i]))
            r_ii, rt_ii = r[..., i, i], r_tilde[..., i, i]
            v[i] = bisect(lambda x: x + r_ii * tf.tanh(rt_ii * x + c), target,
                          target - tf.abs(r_ii) - 1.0, target + tf.abs(r_ii) + 1.0)
            h[i] = tf.tanh(rt_ii * v[i] + c)
        v = tf.stack(v, -1)
        return y - tf.linalg.matvec(q, w) + tf.linalg.matvec(q, v)

    def _inverse_log_det_jacobian(self, y):
        return -self._forward_log_det_jacobian(self._inverse(y))
