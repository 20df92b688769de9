"""Registry of pretrained models: `zoo/pretrained/NAME.json` + `NAME.weights.h5`.

Each entry names the model class, its config, the weights file and its sha256,
the dataset and the test bits/dim of the run that trained it. `load` verifies
the sha256 before Keras reads a byte of the weights.
"""

import hashlib
import json
from pathlib import Path

from zoo.files import write_json
from zoo.models import MODELS

PRETRAINED = Path(__file__).parent / "pretrained"


class IntegrityError(ValueError):
    """A weights file does not match the sha256 the registry recorded."""


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_models():
    """Names of the shipped pretrained models, e.g. `["arm-digits", ...]`."""
    return sorted(p.stem for p in PRETRAINED.glob("*.json"))


def entry(name):
    """The registry entry (a dict) of a pretrained model."""
    path = PRETRAINED / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"Unknown pretrained model {name!r}; expected one of {list_models()}.")
    return json.loads(path.read_text())


def build(model_class, config):
    """An unbuilt model from its class name and constructor config."""
    if model_class not in MODELS:
        raise ValueError(f"Unknown model class {model_class!r}; expected one of {sorted(MODELS)}.")
    return MODELS[model_class](**config)


def load(name):
    """The pretrained model `name`, built and with its verified weights loaded."""
    e = entry(name)
    weights = PRETRAINED / e["weights"]
    if not weights.is_file():
        raise IntegrityError(f"Weights file {weights} of {name!r} is missing.")
    found = sha256(weights)
    if found != e["sha256"]:
        raise IntegrityError(f"Weights file {weights} has sha256 {found}, but the registry "
                             f"expects {e['sha256']}: refusing to load it.")
    model = build(e["model"], e["config"]).build_for_images()
    model.load_weights(weights)
    return model


def publish(name, model, record, directory=PRETRAINED):
    """Ships `model`'s weights as pretrained `name`, with the run `record` it came from.

    The weights are saved from a fresh, uncompiled copy (no optimizer state), each
    file written to a temporary name and renamed, the entry last.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    clean = build(type(model).__name__, model.get_config()).build_for_images()
    clean.set_weights(model.get_weights())
    weights = directory / f"{name}.weights.h5"
    clean.save_weights(weights)  # atomic: `DensityModel.save_weights`
    e = {
        "name": name, "model": type(model).__name__, "config": model.get_config(),
        "weights": weights.name, "sha256": sha256(weights), "dataset": record["dataset"],
        "preset": record["preset"], "test_nats": record["test_nats"],
        "test_bits_per_dim": record["test_bits_per_dim"], "git_commit": record["git_commit"],
    }
    write_json(directory / f"{name}.json", e)
    return e
