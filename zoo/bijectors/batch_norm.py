"""Batch normalization as a bijector (Dinh et al. 2017, section 3.7, eq. 17-18).

    y = (x - mu) / sqrt(sigma^2 + eps),    log|det dy/dx| = -1/2 sum_d log(sigma_d^2 + eps)

with per-channel mu and sigma^2: the batch's moments while training, running
averages otherwise. The statistics live in a Keras layer
(`zoo.layers.MovingMoments`); this bijector is the per-channel affine map of
`ActNorm` with bias -mu and log-scale -log sqrt(sigma^2 + eps), its moments given
as tensors or, while training, computed from its input (once per input: computing
them updates the running averages).
"""

import tensorflow as tf

from zoo.bijectors.actnorm import ActNorm
from zoo.bijectors.base import ZooBijector


def _affine(moments, epsilon):
    """`(mean, variance)` -> ActNorm's `(bias, log_scale)`."""
    mean, variance = moments
    return -tf.cast(mean, tf.float32), -0.5 * tf.math.log(tf.cast(variance, tf.float32) + epsilon)


class BatchNorm(ZooBijector):
    """Per-channel standardization. Events rank 3 `[H, W, C]`.

    Args:
      moments: `(mean, variance)` float32 `[C]` tensors, or a callable
        `x -> (mean, variance)` (the forward direction only: the inverse needs the
        statistics as tensors).
      epsilon: added to the variance.
    """

    def __init__(self, moments, epsilon=1e-4, validate_args=False, name="batch_norm"):
        self._moments, self._epsilon = moments, float(epsilon)
        super().__init__(name, validate_args, moments=moments, epsilon=epsilon)

    def _actnorm(self, x=None):
        """The `ActNorm` of the moments: given, or those of `x` (memoized per `x`)."""
        if not callable(self._moments):
            return ActNorm(_affine(self._moments, self._epsilon))
        if x is None:
            raise ValueError("BatchNorm's inverse needs its moments as tensors, not a callable of the input.")
        return ActNorm(self.memo(x, lambda x: _affine(self._moments(x), self._epsilon)))

    def _forward(self, x):
        return self._actnorm(x).forward(x)

    def _inverse(self, y):
        return self._actnorm().inverse(y)

    def _forward_log_det_jacobian(self, x):
        return self._actnorm(x).forward_log_det_jacobian(x, event_ndims=3)

    def _inverse_log_det_jacobian(self, y):
        return self._actnorm().inverse_log_det_jacobian(y, event_ndims=3)
