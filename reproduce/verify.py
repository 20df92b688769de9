"""`python -m reproduce verify [NAME ...]`: do the shipped models still score their records?

Loads each pretrained model (`zoo.load`, sha256 verified; all of `zoo.list_models()`
when no NAME is given), scores its dataset's whole test split in float32 and prints
one row per model: the test bits/dim its registry entry records, the number now,
their difference, and `ok` when they agree to `TOLERANCE`. A model whose record
under `results/runs/` disagrees with its entry fails too. Exit status 1 when any
model fails or could not be scored (e.g. its dataset is not prepared: `--data-dir`).

`--modes N` prints a second table (`reproduce/modes.py`): the first N test images scored
eagerly, in `tf.function`, by Keras, by the exported SavedModel and by a float32 copy,
which must agree to 1e-3 nats per image, and cached against naive samples.
"""

import contextlib

import keras
import tensorflow as tf

import zoo
from reproduce import modes, records
from zoo import data, hub, training

TOLERANCE = 1e-3  # bits/dim


def check(name, data_dir=None, batch_size=64):
    """One shipped model scored now: a dict with `name`, `dataset`, `images`, `recorded`,
    `now`, `difference` (bits/dim), `ok`, and `note` (why it failed, else "")."""
    entry = hub.entry(name)
    dataset, recorded = entry["dataset"], entry["test_bits_per_dim"]
    row = {"name": name, "dataset": dataset, "images": None, "recorded": recorded, "now": None,
           "difference": None, "ok": False, "note": ""}
    paper = name[:-len(records.slug(dataset)) - 1]
    record = records.read_record(records.RESULTS, paper, entry["preset"], dataset)
    model = zoo.load(name)
    try:
        test = data.load(dataset, "test", data_dir, with_labels=bool(model.num_classes))
        score = training.evaluate(model, test, batch_size)
    except data.DatasetNotPrepared as e:
        row["note"] = f"not scored: {dataset} is not prepared under {e.data_dir} (--data-dir)"
        return row
    row.update(images=score["images"], now=score["bits_per_dim"],
               difference=score["bits_per_dim"] - recorded)
    row["ok"] = abs(row["difference"]) <= TOLERANCE
    if not row["ok"]:
        row["note"] = f"differs from the entry by more than {TOLERANCE} bits/dim"
    if record is not None and abs(record["test_bits_per_dim"] - recorded) > TOLERANCE:
        row["ok"] = False
        row["note"] = (f"its record results/runs/{paper}/{entry['preset']}-{records.slug(dataset)}.json "
                       f"says {record['test_bits_per_dim']:.4f}")
    return row


def header(width):
    return f"{'model':<{width}}  {'images':>6}  {'recorded':>8}  {'now':>8}  {'difference':>10}  ok"


def line(r, width):
    """One row of the table as plain text."""
    now = "-" if r["now"] is None else f"{r['now']:.4f}"
    diff = "-" if r["difference"] is None else f"{r['difference']:+.4f}"
    images = "-" if r["images"] is None else str(r["images"])
    note = f"  {r['note']}" if r["note"] else ""
    return (f"{r['name']:<{width}}  {images:>6}  {r['recorded']:>8.4f}  {now:>8}  {diff:>10}  "
            f"{'ok' if r['ok'] else 'FAIL'}{note}")


@contextlib.contextmanager
def _no_retracing_notes():
    """TF's "triggered tf.function retracing" warnings off inside the block: each model
    scored traces its own predict step, for the full and the last partial batch."""
    def drop(record):
        return "triggered tf.function retracing" not in record.getMessage()

    logger = tf.get_logger()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _table(title, names, header, check, line):
    """Prints `title`, `header(width)` and one `line` per model as it is checked; the rows."""
    width = max(len("model"), *map(len, names))
    print(title, flush=True)
    print(header(width), flush=True)
    rows = []
    with _no_retracing_notes():
        for name in names:
            rows.append(check(name))
            print(line(rows[-1], width), flush=True)
    return rows


def main(args):
    """Runs `verify` from parsed flags (`names`, `data_dir`, `batch_size`, `modes`); prints
    the tables as it goes and returns their rows, or raises `SystemExit(1)` when any model
    fails."""
    keras.mixed_precision.set_global_policy("float32")
    names = args.names or hub.list_models()
    rows = _table(f"Scoring {len(names)} shipped model(s) on their test splits in float32, bits/dim "
                  f"(ok: within {TOLERANCE} of the recorded number).",
                  names, header, lambda name: check(name, args.data_dir, args.batch_size), line)
    if getattr(args, "modes", None):
        rows += _table(f"\nThe first {args.modes} test images in every mode, bits/dim (ok: every image "
                       f"within {modes.NATS} nats across the modes; cached = naive samples).",
                       names, modes.header,
                       lambda name: modes.check(name, args.data_dir, args.modes, args.batch_size),
                       modes.line)
    failed = [r["name"] for r in rows if not r["ok"]]
    if failed:
        print(f"{len(failed)} of {len(rows)} checks failed: {', '.join(failed)}.", flush=True)
        raise SystemExit(1)
    print(f"All {len(rows)} checks agree.", flush=True)
    return rows
