"""Registry of pretrained models: `zoo/pretrained/NAME.json` + `NAME.weights.h5`.

Each entry names the model class, its config, the weights file and its sha256,
the dataset and the test bits/dim of the run that trained it. `load` verifies
the sha256 before Keras reads a byte of the weights.

Weights larger than `MAX_FILE_MB` (the repository keeps every tracked file under
20 MB) ship as Keras' sharded format: an index `NAME.weights.json` and shards
`NAME_00000.weights.h5`, ..., each with its own sha256 in the entry's "shards".
"""

import hashlib
import json
from pathlib import Path

from zoo.files import write_json
from zoo.models import MODELS

PRETRAINED = Path(__file__).parent / "pretrained"
MAX_FILE_MB = 16


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
    return sorted(p.stem for p in PRETRAINED.glob("*.json") if not p.name.endswith(".weights.json"))


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


def _verify(path, expected, name):
    if not path.is_file():
        raise IntegrityError(f"Weights file {path} of {name!r} is missing.")
    found = sha256(path)
    if found != expected:
        raise IntegrityError(f"Weights file {path} has sha256 {found}, but the registry "
                             f"expects {expected}: refusing to load it.")


def load(name):
    """The pretrained model `name`, built and with its verified weights loaded."""
    e = entry(name)
    weights = PRETRAINED / e["weights"]
    _verify(weights, e["sha256"], name)
    for shard, expected in e.get("shards", {}).items():
        _verify(PRETRAINED / shard, expected, name)
    model = build(e["model"], e["config"]).build_for_images()
    model.load_weights(weights)
    return model


def _megabytes(weights):
    return [int(w.size) * w.dtype.itemsize / 2.0**20 for w in weights]


def _save(model, directory, name, max_file_mb):
    """Writes the weights whole, or sharded when over `max_file_mb`; returns the
    index file and {shard file name: sha256} (empty when whole)."""
    sizes = _megabytes(model.get_weights())
    if sum(sizes) <= max_file_mb:
        weights = directory / f"{name}.weights.h5"
        model.save_weights(weights)  # atomic: `DensityModel.save_weights`
        return weights, {}
    if max(sizes) > max_file_mb:  # a shard holds whole variables
        raise ValueError(f"{name}: one weight is {max(sizes):.1f} MB, over the {max_file_mb} MB "
                         f"a shipped file may hold; a model to ship needs smaller layers.")
    whole = directory / f"{name}.weights.h5"
    if whole.exists():  # an earlier, whole publish
        whole.unlink()
    weights = directory / f"{name}.weights.json"
    model.save_weights(weights, max_shard_size=max_file_mb / 1024.0)  # Keras counts in GB
    shards = sorted(p.name for p in directory.glob(f"{name}_[0-9]*.weights.h5"))
    return weights, {shard: sha256(directory / shard) for shard in shards}


def publish(name, model, record, directory=PRETRAINED, max_file_mb=MAX_FILE_MB):
    """Ships `model`'s weights as pretrained `name`, with the run `record` it came from
    (its `paper`, `preset` and `variant` name that record; its dataset, numbers and commit
    are copied).

    The weights are saved from a fresh, uncompiled copy (no optimizer state), written
    whole (to a temporary name and renamed) or, over `max_file_mb`, in shards; the
    entry is written last.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    clean = build(type(model).__name__, model.get_config()).build_for_images()
    clean.set_weights(model.get_weights())
    stale = [directory / f"{name}.weights.json", *directory.glob(f"{name}_[0-9]*.weights.h5")]
    for old in stale:  # an earlier publish's shards (a whole file is replaced in place)
        if old.exists():
            old.unlink()
    weights, shards = _save(clean, directory, name, max_file_mb)
    e = {
        "name": name, "model": type(model).__name__, "config": model.get_config(),
        "weights": weights.name, "sha256": sha256(weights), **({"shards": shards} if shards else {}),
        # Where it came from: its run record is results/runs/PAPER/PRESET[-VARIANT]-DATASET.json.
        "dataset": record["dataset"], "paper": record.get("paper"),
        "preset": record["preset"], "variant": record.get("variant"), "test_nats": record["test_nats"],
        "test_bits_per_dim": record["test_bits_per_dim"], "git_commit": record["git_commit"],
    }
    write_json(directory / f"{name}.json", e)
    return e
