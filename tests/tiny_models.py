"""The registry of tiny models that the tests share: one entry per entry of
`zoo.models.MODELS`, and a class-conditional variant of every family that takes
`num_classes`.

`tiny(name)` builds the family `name` small enough that a forward pass takes
milliseconds, with non-trivial weights (zero-initialized outputs would make couplings
the identity and label embeddings inert: a test could then pass on a degenerate model).
The sweeps (contract, bad input, export, causality, fidelity) run over `CASES`; the
family tests call `tiny` with their own image shape and overrides. A model added to
`MODELS` fails `test_contract.py::test_registry_covers_every_model` until it has a
config here.
"""

import inspect

import keras
import numpy as np

from causality import perturb_weights
from reproduce.modes import float32_copy  # noqa: F401 (the tests' float32 copies)
from zoo.models import MODELS, FlowModel

SHAPE = (4, 4, 1)  # the sweeps' images: [batch, 4, 4, 1] with 3 levels
LEVELS = 3
NUM_CLASSES = 3  # of the conditional variants

TINY = {
    "ARM": dict(filters=8, kernel_size=3, dilations=[1, 2, 1], residual=True, position_embedding=True),
    "PixelCNN": dict(filters=6, num_blocks=2, kernel_size=3, first_kernel_size=3, head_filters=48),
    "GatedPixelCNN": dict(filters=6, num_layers=3, kernel_size=3, first_kernel_size=3, head_filters=48),
    "PixelCNNPlusPlus": dict(nr_resnet=1, filters=8, nr_logistic_mix=2, num_scales=2, dropout=0.0),
    "RealNVP": dict(num_scales=2, num_blocks=0, filters=8, norm="none", flow_batch_norm=True, seed=3),
    "Glow": dict(num_scales=2, depth=1, filters=8, seed=3),
    "MAF": dict(num_layers=2, hidden_units=(16, 16), alpha=0.05, eval_draws=2, seed=3),
    "VAE": dict(latent_dim=3, hidden_units=(16, 16), importance_samples=32, seed=3),
}


def family(name):
    """The class of `name` (a `MODELS` key, or the class itself)."""
    return name if isinstance(name, type) else MODELS[name]


def is_flow(name):
    return issubclass(family(name), FlowModel)


def is_latent_variable(name):
    """A latent-variable model (the VAE): neither autoregressive nor a flow; its `log_prob`
    is the importance-weighted bound and its `call` (fit's loss, `evaluate`) the -ELBO."""
    return "elbo" in family(name).capabilities


def call_nats(model, *args):
    """What Keras' `call` scores, in nats per image: `log_prob`, or a VAE's ELBO."""
    return model.elbo(*args) if is_latent_variable(type(model)) else model.log_prob(*args)


def takes_labels(name):
    """Whether the family has a class-conditional form (a `num_classes` argument)."""
    return "num_classes" in inspect.signature(family(name).__init__).parameters


# Every sweep case: id -> (family, num_classes); ids "Glow" and "Glow-conditional".
CASES = {name: (name, None) for name in sorted(TINY)}
CASES.update({f"{name}-conditional": (name, NUM_CLASSES) for name in sorted(TINY) if takes_labels(name)})
# Variants with a config of their own: the flows' autoregressive prior.
AUTOREGRESSIVE_PRIOR = dict(prior="autoregressive", prior_hidden_units=(16,), prior_components=2)
VARIANTS = {f"{name}-autoregressive_prior": (name, AUTOREGRESSIVE_PRIOR) for name in ("RealNVP", "Glow")}
CASES.update({case: (name, None) for case, (name, _) in VARIANTS.items()})


def tiny_case(case, **overrides):
    """`tiny` of sweep case `case` (a `CASES` id) over `SHAPE` images."""
    name, num_classes = CASES[case]
    variant = VARIANTS.get(case, (name, {}))[1]
    return tiny(name, **({"num_classes": num_classes} if num_classes else {}), **{**variant, **overrides})


def random_images(n=5, levels=LEVELS, shape=SHAPE, seed=0):
    """uint8 images `[n, *shape]`, uniform over `[0, levels)`."""
    return np.random.default_rng(seed).integers(0, levels, (n, *shape)).astype(np.uint8)


def random_labels(n, num_classes=NUM_CLASSES, seed=0):
    """int32 labels `[n]` that cycle through every class, in a seeded order."""
    return np.random.default_rng(seed).permutation(np.arange(n) % num_classes).astype(np.int32)


def labels_for(model, n, seed=0):
    """Labels `[n]` for a class-conditional model, None for an unconditional one."""
    return random_labels(n, model.num_classes, seed) if model.num_classes else None


def args_for(model, images, seed=0):
    """`(images,)` or `(images, labels)`: the positional arguments of `log_prob`."""
    labels = labels_for(model, len(images), seed)
    return (images,) if labels is None else (images, labels)


# ---- non-trivial weights, per family -------------------------------------------------

def _replace(model, seed, scale, bound_name=None):
    """Every float weight drawn afresh: N(0, scale), running variances in [0.5, 2] and
    means N(0, 0.3) (batch norms away from the identity), `bound_name` weights (MAF's
    log-scale bounds) in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "float" not in str(w.dtype):
            continue
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, w.shape))
        elif "moving_mean" in w.path:
            w.assign(rng.normal(0, 0.3, w.shape))
        elif bound_name and bound_name in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape))
        else:
            w.assign(rng.normal(0, scale, w.shape))
    return model


def _glow(model, seed):
    """Actnorms initialized on data, then every trainable weight moved off its init."""
    model.initialize(random_images(8, model.num_levels, model.image_shape, seed=seed + 1))
    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:
        w.assign(w.numpy() + rng.normal(0, 0.1, w.shape))
    return model


def _perturbed(model, seed):
    """Glorot kernels plus small noise on every trainable weight (biases, gates and label
    embeddings start at zero), small enough that no tanh or sigmoid saturates."""
    del seed  # `tiny` seeds Keras before building
    perturb_weights(model, 0.1, seed=3)
    return model


RANDOMIZE = {
    "RealNVP": lambda m, seed: _replace(m, seed, 0.15),
    "MAF": lambda m, seed: _replace(m, seed, 0.2, bound_name="log_scale_bound"),
    "Glow": _glow,
}


def randomized(model, seed=0):
    """`model` (built) with non-trivial weights, the family's recipe; returns it."""
    model.build_for_images()
    return RANDOMIZE.get(type(model).__name__, _perturbed)(model, seed)


def tiny(name, image_shape=SHAPE, num_levels=LEVELS, *, randomize=True, seed=0, **overrides):
    """The registry's model of family `name` (a `MODELS` key or class), built; `overrides`
    replace or extend its config (e.g. `num_classes`, `mixed_precision`).

    The same arguments give the same weights: Keras' global seed is reset first."""
    cls = family(name)
    keras.utils.set_random_seed(seed)
    model = cls(image_shape=image_shape, num_levels=num_levels, **{**TINY[cls.__name__], **overrides})
    model.build_for_images()
    return randomized(model, seed) if randomize else model
