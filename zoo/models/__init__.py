"""Models: one file per family, each a `DensityModel` (a `keras.Model`)."""

from zoo.models.arm import ARM
from zoo.models.base import DensityModel
from zoo.models.flow import FlowModel
from zoo.models.realnvp import RealNVP

MODELS = {cls.__name__: cls for cls in [ARM]}
MODELS["RealNVP"] = RealNVP

__all__ = ["ARM", "DensityModel", "MODELS"]
__all__ += ["FlowModel", "RealNVP"]
