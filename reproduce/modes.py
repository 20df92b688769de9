"""`python -m reproduce verify --modes`: one likelihood in every mode, for shipped models.

For each pretrained model, its first `images` test images are scored, nats per image,
the quantity its record reports (-log p(x); a VAE's -ELBO): eagerly, inside
`tf.function`, through Keras' `predict` (what `evaluate` and the records run), through
the SavedModel `zoo.export` writes, served by TensorFlow alone, and by a float32 copy
(same config with `mixed_precision=None`, same weights). A row gives each mode's mean in
bits/dim, the largest spread over the modes of one image's nats, and for a model with a
sampler of its own (the autoregressive ones) whether cached and naive sampling draw the
same images for one seed. It is ok when the spread is within `NATS` and the samples agree.
"""

import math
import tempfile

import numpy as np
import tensorflow as tf

import zoo
from zoo import data, hub
from zoo.models.base import DensityModel

NATS = 1e-3  # per image
MODES = ("eager", "graph", "keras", "savedmodel", "float32")
SAMPLE_SEED, SAMPLES = 7, 4


def _scorer(model):
    """(endpoint name, model method) of the recorded quantity: a VAE's ELBO, else log p(x)."""
    return ("elbo", model.elbo) if "elbo" in model.capabilities else ("log_prob", model.log_prob)


def float32_copy(model):
    """The same config with `mixed_precision=None`, the same weights."""
    copy = hub.build(type(model).__name__, {**model.get_config(), "mixed_precision": None})
    copy = copy.build_for_images()
    copy.set_weights(model.get_weights())
    return copy


def has_own_sampler(model):
    """Whether `sample(method="cached")` runs another algorithm than `method="naive"`."""
    return type(model)._sample_naive is not DensityModel._sample_naive


def score_modes(model, images, labels=None, batch_size=64):
    """{mode: float64 nats per image `[N]`} for `images` (uint8 `[N, H, W, C]`)."""
    endpoint, method = _scorer(model)
    extra = [] if labels is None else [labels]
    batches = [(images[i:i + batch_size], *[e[i:i + batch_size] for e in extra])
               for i in range(0, len(images), batch_size)]

    def run(fn):
        return -np.concatenate([np.asarray(fn(*b), np.float64) for b in batches])

    graph = tf.function(method)
    copy = float32_copy(model)
    keras_inputs = images if labels is None else (images, labels)
    per_nat = model.num_dims * math.log(2.0)
    scores = {
        "eager": run(method),
        "graph": run(graph),
        "keras": np.asarray(model.predict(keras_inputs, batch_size=batch_size, verbose=0),
                            np.float64).reshape(-1) * per_nat,
        "float32": run(_scorer(copy)[1]),
    }
    with tempfile.TemporaryDirectory() as folder:
        served = tf.saved_model.load(zoo.export(model, f"{folder}/model"))
        serve = getattr(served, endpoint)
        scores["savedmodel"] = run(lambda *b: serve(*b)[endpoint])
    return {mode: scores[mode] for mode in MODES}


def check(name, data_dir=None, images=200, batch_size=64):
    """One shipped model in every mode: a dict with `name`, `images`, `bits_per_dim`
    ({mode: mean}), `spread` (nats, the worst image), `samples` (True / False, None when the
    model has one sampler), `ok`, `note` and `not_prepared` (the `zoo.data.DatasetNotPrepared`
    when it could not be scored, else None)."""
    model = zoo.load(name)
    dataset = hub.entry(name)["dataset"]
    row = {"name": name, "images": None, "bits_per_dim": {}, "spread": None, "samples": None,
           "ok": False, "note": "", "not_prepared": None}
    try:
        split = data.load(dataset, "test", data_dir, with_labels=bool(model.num_classes))
    except data.DatasetNotPrepared as e:
        row.update(note=f"not scored: {dataset} is not prepared under {e.data_dir} (--data-dir)",
                   not_prepared=e)
        return row
    batch = next(iter(split.batch(images)))
    x, y = (batch if model.num_classes else (batch, None))
    x = x.numpy()
    y = None if y is None else y.numpy().astype(np.int32)
    scores = score_modes(model, x, y, batch_size)
    stacked = np.stack(list(scores.values()))
    per_bit = model.num_dims * math.log(2.0)
    row.update(images=len(x), spread=float(np.max(stacked.max(0) - stacked.min(0))),
               bits_per_dim={mode: float(s.mean() / per_bit) for mode, s in scores.items()})
    if has_own_sampler(model):
        cached = model.sample(SAMPLES, seed=SAMPLE_SEED).numpy()
        naive = model.sample(SAMPLES, seed=SAMPLE_SEED, method="naive").numpy()
        row["samples"] = bool(np.array_equal(cached, naive))
    row["ok"] = row["spread"] <= NATS and row["samples"] is not False
    if row["spread"] > NATS:
        row["note"] = f"modes differ by up to {row['spread']:.2e} nats on one image"
    elif row["samples"] is False:
        row["note"] = f"cached and naive samples differ for seed {SAMPLE_SEED}"
    return row


def header(width):
    modes = "".join(f"{m:>11}" for m in MODES)
    return f"{'model':<{width}}  {'images':>6}{modes}  {'spread':>9}  samples  ok"


def line(r, width):
    """One row of the table as plain text."""
    images = "-" if r["images"] is None else str(r["images"])
    modes = "".join(f"{r['bits_per_dim'][m]:>11.4f}" if m in r["bits_per_dim"] else f"{'-':>11}"
                    for m in MODES)
    spread = "-" if r["spread"] is None else f"{r['spread']:.1e}"
    samples = {None: "-", True: "same", False: "DIFFER"}[r["samples"]]
    note = f"  {r['note']}" if r["note"] else ""
    return (f"{r['name']:<{width}}  {images:>6}{modes}  {spread:>9}  {samples:>7}  "
            f"{'ok' if r['ok'] else 'FAIL' if r['not_prepared'] is None else 'skip'}{note}")
