"""Batch normalization as a bijector (Dinh et al. 2017, section 3.7, eq. 17-18).

    y = (x - mu) / sqrt(sigma^2 + eps),    log|det dy/dx| = -1/2 sum_d log(sigma_d^2 + eps)

with per-channel mu and sigma^2: the batch's moments while training, running
averages otherwise. The statistics live in a Keras layer
(`zoo.layers.MovingMoments`); this bijector is the per-channel affine map of
`ActNorm` with bias -mu and log-scale -log sqrt(sigma^2 + eps).
"""

import tensorflow as tf

from zoo.bijectors.actnorm import ActNorm


def _affine(moments, epsilon):
    """`(mean, variance)` -> ActNorm's `(bias, log_scale)`."""
    mean, variance = moments
    return -tf.cast(mean, tf.float32), -0.5 * tf.math.log(tf.cast(variance, tf.float32) + epsilon)


class BatchNorm(ActNorm):
    """Per-channel standardization. Events rank 3 `[H, W, C]`.

    Args:
      moments: `(mean, variance)` float32 `[C]` tensors, or a callable
        `x -> (mean, variance)` (the forward direction only: the inverse needs the
        statistics as tensors).
      epsilon: added to the variance.
    """

    _what = "moments"

    def __init__(self, moments, epsilon=1e-4, validate_args=False, name="batch_norm"):
        epsilon = float(epsilon)
        if callable(moments):
            params = lambda x: _affine(moments(x), epsilon)  # noqa: E731
        else:
            params = _affine(moments, epsilon)
        super().__init__(params, validate_args=validate_args, name=name)
