"""`python -m reproduce verify [NAME ...]`: do the shipped models still score their records?

Loads each pretrained model (`zoo.load`, sha256 verified; all of `zoo.list_models()`
when no NAME is given), scores its dataset's whole test split in float32 and prints
one row per model: the test bits/dim its registry entry records, the number now,
their difference, `ok` when they agree to `TOLERANCE`, and the run record the entry
names (its `paper`, `preset`, `variant` and dataset: `results/runs/PAPER/...json`). A
model fails when its number now, its entry and its record disagree, or when it has no
record. Exit status 1 when any model fails; 2 when none fails but some could not be
scored because their dataset is not prepared (`--data-dir`).

`--modes N` prints a second table (`reproduce/modes.py`): the first N test images scored
eagerly, in `tf.function`, by Keras, by the exported SavedModel and by a float32 copy,
which must agree to 1e-3 nats per image, and cached against naive samples.
"""

import contextlib
import json

import keras
import tensorflow as tf

import zoo
from reproduce import modes, records, runs
from reproduce.cli_errors import fail, not_prepared
from zoo import data, hub, training

TOLERANCE = 1e-3  # bits/dim


def record_path(entry):
    """The repository's record of the run a registry entry names: results/runs/PAPER/
    PRESET[-VARIANT]-DATASET.json (it may not exist); None for an entry that names no paper."""
    if not entry.get("paper"):
        return None
    return runs.record_path(records.RESULTS, entry["paper"], entry["preset"], entry["dataset"],
                            entry.get("variant"))


def record_disagreement(entry, path):
    """Why the record at `path` does not back `entry` (a sentence), or "" when it does:
    the same test bits/dim (to `TOLERANCE`), model class and training commit."""
    if path is None:
        return "its entry names no paper, preset and variant: no record to compare with"
    if not path.is_file():
        return "no record: that file does not exist"
    record = json.loads(path.read_text())
    if abs(record["test_bits_per_dim"] - entry["test_bits_per_dim"]) > TOLERANCE:
        return f"the record says {record['test_bits_per_dim']:.4f}"
    if (record["model"], record["git_commit"]) != (entry["model"], entry["git_commit"]):
        return (f"the record is of a {record['model']} trained at {record['git_commit']}, "
                f"the entry of a {entry['model']} trained at {entry['git_commit']}")
    return ""


def shown_path(path):
    """A record's path as the table prints it: from the repository's root."""
    return "-" if path is None else str(path.relative_to(records.RESULTS.parent))


def check(name, data_dir=None, batch_size=64):
    """One shipped model scored now: a dict with `name`, `dataset`, `record` (its record's
    path from the repository's root), `images`, `recorded`, `now`, `difference`
    (bits/dim), `ok`, `note` (why it failed, else "") and `not_prepared` (the
    `zoo.data.DatasetNotPrepared` when it could not be scored, else None)."""
    entry = hub.entry(name)
    dataset, recorded = entry["dataset"], entry["test_bits_per_dim"]
    path = record_path(entry)
    row = {"name": name, "dataset": dataset, "record": shown_path(path), "images": None,
           "recorded": recorded, "now": None, "difference": None, "ok": False, "note": "",
           "not_prepared": None}
    disagreement = record_disagreement(entry, path)  # a failure whether or not it is scored
    model = zoo.load(name)
    try:
        test = data.load(dataset, "test", data_dir, with_labels=bool(model.num_classes))
        score = training.evaluate(model, test, batch_size)
    except data.DatasetNotPrepared as e:
        unscored = f"not scored: {dataset} is not prepared under {e.data_dir} (--data-dir)"
        row.update(note="; ".join(filter(None, [disagreement, unscored])),
                   not_prepared=None if disagreement else e)
        return row
    row.update(images=score["images"], now=score["bits_per_dim"],
               difference=score["bits_per_dim"] - recorded)
    row["ok"] = abs(row["difference"]) <= TOLERANCE and not disagreement
    if abs(row["difference"]) > TOLERANCE:
        row["note"] = f"differs from the entry by more than {TOLERANCE} bits/dim"
    row["note"] = "; ".join(filter(None, [row["note"], disagreement]))
    return row


def header(width):
    return f"{'model':<{width}}  {'images':>6}  {'recorded':>8}  {'now':>8}  {'difference':>10}  ok    record"


def line(r, width):
    """One row of the table as plain text."""
    now = "-" if r["now"] is None else f"{r['now']:.4f}"
    diff = "-" if r["difference"] is None else f"{r['difference']:+.4f}"
    images = "-" if r["images"] is None else str(r["images"])
    note = f"  {r['note']}" if r["note"] else ""
    return (f"{r['name']:<{width}}  {images:>6}  {r['recorded']:>8.4f}  {now:>8}  {diff:>10}  "
            f"{'ok  ' if r['ok'] else 'FAIL' if r['not_prepared'] is None else 'skip'}  {r['record']}{note}")


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
    the tables as it goes and returns their rows. Raises `SystemExit(1)` when any model
    fails, else `CommandLineError` (exit status 2, how to prepare the data) when a dataset
    is not prepared."""
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
    unprepared = [r for r in rows if r["not_prepared"] is not None]
    failed = [r["name"] for r in rows if not r["ok"] and r["not_prepared"] is None]
    if failed:
        print(f"{len(failed)} of {len(rows)} checks failed: {', '.join(failed)}.", flush=True)
        raise SystemExit(1)
    if unprepared:
        others = len(rows) - len(unprepared)
        print(f"{len(unprepared)} of {len(rows)} checks not run: their dataset is not prepared"
              + (f"; the other {others} agree." if others else "."), flush=True)
        fail(not_prepared(*(r["not_prepared"] for r in unprepared)))
    print(f"All {len(rows)} checks agree.", flush=True)
    return rows
