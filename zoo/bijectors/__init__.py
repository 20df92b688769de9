"""TFP bijectors: stateless float32 math built from tensors that Keras layers compute.

Events are images `[H, W, C]` (rank 3); log-dets are `[batch]`.
"""

from zoo.bijectors.batch_norm import BatchNorm
from zoo.bijectors.coupling import AffineCoupling
from zoo.bijectors.factor_out import FactorOut
from zoo.bijectors.logit import LogitPreprocess
from zoo.bijectors.masks import channel_mask, checkerboard_mask
from zoo.bijectors.squeeze import Squeeze

__all__ = ["AffineCoupling", "BatchNorm", "FactorOut", "LogitPreprocess", "Squeeze",
           "channel_mask", "checkerboard_mask"]
