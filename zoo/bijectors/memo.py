"""Per-bijector memo of values computed from one input tensor.

TFP computes `forward(x)` and `forward_log_det_jacobian(x)` in separate calls.
A coupling's s and t (one network pass) serve both; the memo keys them by the
input tensor itself, so each network runs once per direction and call. Bijectors
are rebuilt on every model call, so a memo lives no longer than one pass.
"""


class TensorMemo:
    """`memo(x, fn)` returns `fn(x)`, computing it once per tensor `x`."""

    def __init__(self):
        self._values = {}

    def __call__(self, x, fn):
        key = x.ref()
        if key not in self._values:
            self._values[key] = fn(x)
        return self._values[key]
