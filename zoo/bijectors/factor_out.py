"""Multi-scale factor-out (Dinh et al. 2017, section 3.6, eq. 14-16).

    z = concat(x[..., :k], inner(x[..., k:]))     k = C // 2 channels leave the flow

The first half of the channels is final (modelled by the base distribution); the
other half goes on through `inner`, the remaining scales. Nesting FactorOut inside
per-scale Chains gives the whole multi-scale flow as one bijector whose output
has the input's shape, so `encode` returns all scales in one tensor. (Glow's
learned split prior is a coupling on the factored half conditioned on the rest,
applied after this split.)
"""

import tensorflow as tf

from zoo.bijectors.base import ZooBijector


class FactorOut(ZooBijector):
    """Identity on the first `C // 2` channels, `inner` on the rest. Events rank 3."""

    def __init__(self, inner, validate_args=False, name="factor_out"):
        self._inner = inner
        super().__init__(name, validate_args, inner=inner)

    @property
    def inner(self):
        return self._inner

    def _split(self, x):
        channels = x.shape[-1]
        if channels is None or channels % 2:
            raise ValueError(f"factor-out needs an even number of channels, got shape {x.shape}.")
        return self.memo(x, lambda x: (x[..., :channels // 2], x[..., channels // 2:]))

    def _forward(self, x):
        out, rest = self._split(x)
        return tf.concat([out, self._inner.forward(rest)], axis=-1)

    def _inverse(self, y):
        out, rest = self._split(y)
        return tf.concat([out, self._inner.inverse(rest)], axis=-1)

    def _forward_log_det_jacobian(self, x):
        return self._inner.forward_log_det_jacobian(self._split(x)[1], event_ndims=3)

    def _inverse_log_det_jacobian(self, y):
        return self._inner.inverse_log_det_jacobian(self._split(y)[1], event_ndims=3)
