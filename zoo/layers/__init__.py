"""Keras 3 layers. They own every variable of the zoo."""

from zoo.layers.actnorm_params import ActNormParams
from zoo.layers.causal_conv1d import CausalConv1D
from zoo.layers.coupling_resnet import CouplingResNet
from zoo.layers.dropout import ResumableDropout
from zoo.layers.moving_moments import MovingMoments
from zoo.layers.glow_nets import GlowCouplingNet, LearnedPrior, ZeroConv2D
from zoo.layers.gated_pixelcnn import GatedPixelCNNLayer, VerticalConv2D
from zoo.layers.invertible_conv_weight import Invertible1x1ConvWeight
from zoo.layers.masked_conv2d import MaskedConv2D
from zoo.layers.made import MADE
from zoo.layers.masked_dense import MaskedDense
from zoo.layers.gated_resnet import GatedResNet
from zoo.layers.posterior_flow import (POSTERIOR_FLOWS, HouseholderFlow, HouseholderSylvesterFlow, IAFFlow,
                                      OrthogonalSylvesterFlow, PlanarFlow, TriangularSylvesterFlow, posterior_flow)
from zoo.layers.shifted_conv2d import (DownRightShiftedConv2D, DownRightShiftedConv2DTranspose,
                                       DownShiftedConv2D, DownShiftedConv2DTranspose)

__all__ = ["CausalConv1D", "ResumableDropout", "GatedPixelCNNLayer", "VerticalConv2D", "MaskedConv2D"]
__all__ += ["CouplingResNet", "MovingMoments"]
__all__ += ["ActNormParams", "GlowCouplingNet", "Invertible1x1ConvWeight", "LearnedPrior",
            "ZeroConv2D"]
__all__ += ["GatedResNet", "DownShiftedConv2D", "DownRightShiftedConv2D", "DownShiftedConv2DTranspose",
            "DownRightShiftedConv2DTranspose"]
__all__ += ["MADE", "MaskedDense"]
__all__ += ["POSTERIOR_FLOWS", "HouseholderFlow", "HouseholderSylvesterFlow", "IAFFlow", "OrthogonalSylvesterFlow",
            "PlanarFlow", "TriangularSylvesterFlow", "posterior_flow"]
