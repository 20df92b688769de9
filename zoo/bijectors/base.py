"""`ZooBijector`: what every bijector of the zoo shares.

The zoo's bijectors are rebuilt from tensors at every model call (a Keras layer owns
each variable), so they need none of TFP's parameter batching; their events are
images `[H, W, C]` (`event_ndims = 3`) or vectors (`event_ndims = 1`), their log-dets
`[batch]`; each instance caches only its own results. `memo(x, fn)` computes a value
that `forward(x)` and its log-det share (a coupling's network pass, a batch's moments)
once per input tensor.
"""

import tensorflow_probability as tfp

from zoo.bijectors.memo import TensorMemo

tfb = tfp.bijectors


class ZooBijector(tfb.Bijector):
    """Base class. Subclasses set `event_ndims` (default 3) and `constant_jacobian`,
    and call `super().__init__(name, validate_args, **their constructor arguments)`."""

    event_ndims = 3
    constant_jacobian = False

    def __init__(self, name, validate_args=False, **parameters):
        self._memo = TensorMemo()
        super().__init__(forward_min_event_ndims=self.event_ndims,
                         is_constant_jacobian=self.constant_jacobian, validate_args=validate_args,
                         parameters={**parameters, "validate_args": validate_args, "name": name},
                         name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    def _get_parameterization(self):
        # TFP caches results per parameterization: two bijectors whose parameters are
        # equal tensors would share them (stale values, no gradient on a new tape).
        return id(self)

    def memo(self, x, fn):
        """`fn(x)`, computed once per tensor `x` for this bijector."""
        return self._memo(x, fn)
