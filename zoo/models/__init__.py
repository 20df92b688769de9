"""Models: one file per family, each a `DensityModel` (a `keras.Model`)."""

from zoo.models.arm import ARM
from zoo.models.base import DensityModel
from zoo.models.flow import FlowModel
from zoo.models.glow import Glow
from zoo.models.maf import MAF
from zoo.models.realnvp import RealNVP
from zoo.models.pixelcnn import GatedPixelCNN, PixelCNN
from zoo.models.pixelcnnpp import PixelCNNPlusPlus
from zoo.models.vae import VAE

MODELS = {cls.__name__: cls for cls in [ARM, PixelCNN, GatedPixelCNN]}
MODELS["RealNVP"] = RealNVP
MODELS["PixelCNNPlusPlus"] = PixelCNNPlusPlus
MODELS["Glow"] = Glow
MODELS["MAF"] = MAF
MODELS["VAE"] = VAE

__all__ = ["ARM", "DensityModel", "MODELS", "PixelCNN", "GatedPixelCNN"]
__all__ += ["FlowModel", "RealNVP"]
__all__ += ["Glow"]
__all__ += ["PixelCNNPlusPlus"]
__all__ += ["MAF"]
__all__ += ["VAE"]
