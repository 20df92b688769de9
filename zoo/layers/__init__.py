"""Keras 3 layers. They own every variable of the zoo."""

from zoo.layers.causal_conv1d import CausalConv1D
from zoo.layers.coupling_resnet import CouplingResNet
from zoo.layers.dropout import ResumableDropout
from zoo.layers.moving_moments import MovingMoments
from zoo.layers.gated_pixelcnn import GatedPixelCNNLayer, VerticalConv2D
from zoo.layers.masked_conv2d import MaskedConv2D

__all__ = ["CausalConv1D", "ResumableDropout", "GatedPixelCNNLayer", "VerticalConv2D", "MaskedConv2D"]
__all__ += ["CouplingResNet", "MovingMoments"]
