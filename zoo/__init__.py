"""A model zoo of exact-likelihood image models in TensorFlow 2 / Keras 3 / TFP.

    import zoo
    zoo.list_models()                 # pretrained names, e.g. "arm-digits"
    model = zoo.load("arm-digits")    # sha256-verified shipped weights
    images = next(iter(zoo.data.load("digits", "test").batch(16))).numpy()
    model.bits_per_dim(images)        # uint8 [batch, H, W, C] -> [batch]
    model.sample(16, temperature=0.8, seed=1)
    zoo.export(model, "out/")         # SavedModel servable by TensorFlow alone
"""

__version__ = "0.1.0"

from zoo._quiet import quiet_tensorflow  # noqa: E402

quiet_tensorflow()  # before any import of TensorFlow: no CUDA probe lines on a machine without a GPU

from zoo.export import export  # noqa: E402
from zoo.hub import list_models, load  # noqa: E402

__all__ = ["export", "list_models", "load"]

SUBMODULES = ("data", "training", "figures", "hub", "models", "layers", "bijectors",
              "distributions")


def __getattr__(name):
    """`zoo.data`, `zoo.training`, ... without importing each first (imported on first use)."""
    if name in SUBMODULES:
        import importlib
        return importlib.import_module(f"zoo.{name}")
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
