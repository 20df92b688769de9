"""Keras 3 layers. They own every variable of the zoo."""

from zoo.layers.causal_conv1d import CausalConv1D
from zoo.layers.dropout import ResumableDropout

__all__ = ["CausalConv1D", "ResumableDropout"]
