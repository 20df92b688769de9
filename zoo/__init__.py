"""A model zoo of exact-likelihood image models in TensorFlow 2 / Keras 3 / TFP.

    import zoo
    zoo.list_models()                 # pretrained names, e.g. "arm-digits"
    model = zoo.load("arm-digits")    # sha256-verified shipped weights
    model.bits_per_dim(images)        # uint8 [batch, H, W, C] -> [batch]
    model.sample(16, temperature=0.8, seed=1)
    zoo.export(model, "out/")         # SavedModel servable by TensorFlow alone
"""

__version__ = "0.1.0"

from zoo.export import export  # noqa: E402
from zoo.hub import list_models, load  # noqa: E402

__all__ = ["export", "list_models", "load"]
