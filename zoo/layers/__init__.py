"""Keras 3 layers. They own every variable of the zoo."""

from zoo.layers.causal_conv1d import CausalConv1D

__all__ = ["CausalConv1D"]
