"""Activation normalization (Kingma and Dhariwal 2018, section 3.1, Table 1).

    y = (x + b) * exp(s),      log|det dy/dx| = H * W * sum_c s_c

with per-channel bias b and log-scale s. The parameters live in a Keras layer
(`zoo.layers.ActNormParams`, which also does the data-dependent initialization);
this bijector only does the math, from tensors or from a callable that computes
them from its input (the initializing pass). Parameters of shape `[C]` or
`[batch, 1, 1, C]` (a class-conditional prior) both work.
"""

import tensorflow as tf
import tensorflow_probability as tfp

from zoo.bijectors.memo import TensorMemo

tfb = tfp.bijectors


class ActNorm(tfb.Bijector):
    """Per-channel affine map. Events rank 3 `[H, W, C]`.

    Args:
      params: `(bias, log_scale)` float32 tensors broadcastable to `[batch, H, W, C]`,
        or a callable `x -> (bias, log_scale)` (forward direction only).
    """

    _what = "parameters"  # named in the error of an inverse without tensors

    def __init__(self, params, validate_args=False, name="actnorm"):
        parameters = dict(locals())
        self._params = params
        self._memo = TensorMemo()
        super().__init__(forward_min_event_ndims=3, validate_args=validate_args,
                         parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    def _get(self, x=None):
        """(bias, log_scale) as float32 tensors."""
        def compute(x):
            if callable(self._params):
                if x is None:
                    raise ValueError(f"{type(self).__name__}'s inverse needs its {self._what} as "
                                     f"tensors, not a callable of the input.")
                bias, log_scale = self._params(x)
            else:
                bias, log_scale = self._params
            return tf.cast(bias, tf.float32), tf.cast(log_scale, tf.float32)
        if x is None or not callable(self._params):
            return compute(x)
        return self._memo(x, compute)

    def _forward(self, x):
        bias, log_scale = self._get(x)
        return (x + bias) * tf.exp(log_scale)

    def _inverse(self, y):
        bias, log_scale = self._get()
        return y * tf.exp(-log_scale) - bias

    def _forward_log_det_jacobian(self, x):
        _, log_scale = self._get(x)
        return tf.reduce_sum(log_scale + tf.zeros_like(x), axis=[-3, -2, -1])

    def _inverse_log_det_jacobian(self, y):
        _, log_scale = self._get()
        return -tf.reduce_sum(log_scale + tf.zeros_like(y), axis=[-3, -2, -1])
