"""`python -m reproduce.rescore [NAME ...]`: a maintainer's re-evaluation of shipped models.

Scores each pretrained model's whole test split as `verify` does (float32, whatever
precision it trained in) and writes the result into its run record and registry
entry, keeping the training facts; the record gains `evaluation` (how and at which
commit it was scored). Then regenerates `results/README.md`. Run it from a clean
checkout: the commit is part of the record.
"""

import argparse
import json
import math

from reproduce import records, verify
from reproduce.threads import positive_int
from zoo import hub
from zoo.files import write_json


def rescore(name, data_dir, batch_size, commit):
    """Re-scores `name`; returns (recorded bits/dim, new bits/dim)."""
    row = verify.check(name, data_dir, batch_size)
    if row["now"] is None:
        raise SystemExit(f"error: {name}: {row['note']}")
    entry = hub.entry(name)
    path = verify.record_path(entry)
    if path is None or not path.is_file():
        raise SystemExit(f"error: {name} has no record ({verify.shown_path(path)}).")
    record = json.loads(path.read_text())
    model_dims = math.prod(entry["config"]["image_shape"])
    bpd = row["now"]
    nats = bpd * model_dims * math.log(2.0)
    before = record["test_bits_per_dim"]
    record.update(test_nats=nats, test_bits_per_dim=bpd, test_images=row["images"], evaluation={
        "precision": "float32", "method": "zoo.training.evaluate (Keras predict, graph)",
        "git_commit": commit, "date": records.now(), "previous_test_bits_per_dim": before})
    records.write_record(records.RESULTS, record)
    entry.update(test_nats=nats, test_bits_per_dim=bpd)
    write_json(hub.PRETRAINED / f"{name}.json", entry)
    return before, bpd


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m reproduce.rescore", description=__doc__)
    p.add_argument("names", nargs="*", help="pretrained names (default: all shipped models)")
    p.add_argument("--data-dir", help="TFDS data directory (default: $TFDS_DATA_DIR, then TFDS's; "
                                      "digits needs none)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per batch (default: 64)")
    args = p.parse_args(argv)
    commit = records.git_commit()
    if commit.endswith("-dirty"):
        raise SystemExit("error: uncommitted changes to tracked files: re-score from a clean checkout.")
    for name in args.names or hub.list_models():
        before, after = rescore(name, args.data_dir, args.batch_size, commit)
        print(f"{name}: {before:.4f} -> {after:.4f} bits/dim ({after - before:+.4f})", flush=True)
    records.regenerate_table(records.RESULTS)


if __name__ == "__main__":
    main()
