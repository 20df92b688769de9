"""Batch normalization as a bijector (Dinh et al. 2017, section 3.7, eq. 17-18).

    y = (x - mu) / sqrt(sigma^2 + eps),    log|det dy/dx| = -1/2 sum_d log(sigma_d^2 + eps)

with per-channel mu and sigma^2: the batch's moments while training, running
averages otherwise. The statistics live in a Keras layer
(`zoo.layers.MovingMoments`); this bijector only does the math, from tensors or
from a callable that computes them from its input.
"""

import tensorflow as tf
import tensorflow_probability as tfp

from zoo.bijectors.memo import TensorMemo

tfb = tfp.bijectors


class BatchNorm(tfb.Bijector):
    """Per-channel standardization. Events rank 3 `[H, W, C]`.

    Args:
      moments: `(mean, variance)` float32 `[C]` tensors, or a callable
        `x -> (mean, variance)` (the forward direction only: the inverse needs the
        statistics as tensors).
      epsilon: added to the variance.
    """

    def __init__(self, moments, epsilon=1e-4, validate_args=False, name="batch_norm"):
        parameters = dict(locals())
        self._moments = moments
        self._epsilon = float(epsilon)
        self._memo = TensorMemo()
        super().__init__(forward_min_event_ndims=3, validate_args=validate_args,
                         parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    def _stats(self, x=None):
        """(mean, log std) float32 `[C]`."""
        def compute(x):
            if callable(self._moments):
                if x is None:
                    raise ValueError("BatchNorm's inverse needs its moments as tensors, "
                                     "not a callable of the input.")
                mean, variance = self._moments(x)
            else:
                mean, variance = self._moments
            mean = tf.cast(mean, tf.float32)
            log_std = 0.5 * tf.math.log(tf.cast(variance, tf.float32) + self._epsilon)
            return mean, log_std
        if x is None or not callable(self._moments):
            return compute(x)
        return self._memo(x, compute)

    def _forward(self, x):
        mean, log_std = self._stats(x)
        return (x - mean) * tf.exp(-log_std)

    def _inverse(self, y):
        mean, log_std = self._stats()
        return y * tf.exp(log_std) + mean

    def _log_det(self, x):
        _, log_std = self._stats(x)
        pixels = tf.cast(tf.reduce_prod(tf.shape(x)[-3:-1]), tf.float32)
        return tf.fill(tf.shape(x)[:1], -pixels * tf.reduce_sum(log_std))

    def _forward_log_det_jacobian(self, x):
        return self._log_det(x)

    def _inverse_log_det_jacobian(self, y):
        _, log_std = self._stats()
        pixels = tf.cast(tf.reduce_prod(tf.shape(y)[-3:-1]), tf.float32)
        return tf.fill(tf.shape(y)[:1], pixels * tf.reduce_sum(log_std))
