"""TFP bijectors: stateless float32 math built from tensors that Keras layers compute.

Events are images `[H, W, C]` (rank 3), or latent vectors `[D]` (rank 1: the VAE
posterior flows planar, gated IAF, Householder, Sylvester); log-dets are `[batch]`.
"""

from zoo.bijectors.actnorm import ActNorm
from zoo.bijectors.autoregressive import (autoregressive_affine, inverse_autoregressive_flow, maf_steps,
                                          masked_autoregressive_flow)
from zoo.bijectors.batch_norm import BatchNorm
from zoo.bijectors.channel_coupling import channel_coupling, gaussian_split
from zoo.bijectors.coupling import AffineCoupling
from zoo.bijectors.factor_out import FactorOut
from zoo.bijectors.flatten import Flatten
from zoo.bijectors.gated_iaf import GatedIAF
from zoo.bijectors.householder import Householder, householder_flow, householder_product
from zoo.bijectors.invertible_conv import Invertible1x1Conv, lu_weight
from zoo.bijectors.logit import check_alpha, logit_preprocess
from zoo.bijectors.masks import channel_mask, checkerboard_mask
from zoo.bijectors.planar import Planar
from zoo.bijectors.scale_pixels import ScalePixels
from zoo.bijectors.squeeze import Squeeze
from zoo.bijectors.sylvester import Sylvester, bounded_triangular, orthogonalize, reversal

__all__ = ["AffineCoupling", "BatchNorm", "FactorOut", "logit_preprocess", "Squeeze",
           "channel_mask", "checkerboard_mask"]
__all__ += ["ActNorm", "Invertible1x1Conv", "ScalePixels", "channel_coupling", "gaussian_split",
            "check_alpha", "lu_weight"]
__all__ += ["Flatten", "autoregressive_affine", "inverse_autoregressive_flow", "maf_steps",
            "masked_autoregressive_flow"]
__all__ += ["GatedIAF", "Householder", "Planar", "Sylvester", "bounded_triangular", "householder_flow",
            "householder_product", "orthogonalize", "reversal"]
