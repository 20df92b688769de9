"""Models: one file per family, each a `DensityModel` (a `keras.Model`)."""

from zoo.models.arm import ARM
from zoo.models.base import DensityModel

MODELS = {cls.__name__: cls for cls in [ARM]}

__all__ = ["ARM", "DensityModel", "MODELS"]
