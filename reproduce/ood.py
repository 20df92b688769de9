"""Out-of-distribution detection with the zoo's likelihoods: `python -m reproduce ood`.

Fashion-MNIST's test images (in distribution) against MNIST's (out of distribution)
under the Fashion-MNIST models, and the reverse under the MNIST models, each scored by

- the negative log-likelihood, bits/dim: Nalisnick, Matsukawa, Teh, Gorur and
  Lakshminarayanan 2019, "Do Deep Generative Models Know What They Don't Know?", ICLR
  (their Figure 1: MNIST gets *higher* likelihood under a Fashion-MNIST Glow);
- the likelihood ratio against a background model trained on perturbed inputs: Ren,
  Liu, Fertig, Snoek, Poplin, DePristo, Dillon and Lakshminarayanan 2019, "Likelihood
  Ratios for Out-of-Distribution Detection", NeurIPS (Table 1: Fashion-MNIST vs MNIST);
- the complexity-corrected score S = -log2 p(x) - L(x) with PNG and JPEG2000 as the
  compressor: Serra, Alvarez, Gomez, Slizovskaia, Nunez and Luque 2020, "Input
  Complexity and Out-of-Distribution Detection with Likelihood-based Generative
  Models", ICLR;
- the typicality test over batches of M images, the entropy estimated on the
  in-distribution validation split (held out from training): Nalisnick, Matsukawa, Teh
  and Lakshminarayanan 2019b, "Detecting Out-of-Distribution Inputs to Deep Generative
  Models Using Typicality", arXiv:1906.02994.

Writes OUT/runs/ood.json (the record), OUT/ood.md (the tables, from the record) and
OUT/figures/ood-IN-OUT.png (bits/dim histograms of both test sets under each model).
A model that is not shipped is a row that says so.
"""

import os
import time

import numpy as np

# In-distribution dataset, OOD dataset, the models trained on the first (pretrained
# names) and the background model of each that has one.
PAIRS = (
    {"in": "fashion_mnist", "out": "mnist",
     "models": ("pixelcnnpp-fashion_mnist", "glow-fashion_mnist"),
     "backgrounds": {"pixelcnnpp-fashion_mnist": "pixelcnnpp_background-fashion_mnist"}},
    {"in": "mnist", "out": "fashion_mnist",
     "models": ("pixelcnnpp-mnist", "glow-mnist"), "backgrounds": {}},
)
COMPRESSORS = ("png", "jpeg2000")  # zoo.ood.COMPRESSORS
TYPICALITY_M = (1, 2, 10, 25)  # the typicality test's batch sizes
RECORD = os.path.join("runs", "ood.json")  # under OUT; not runs/*/*.json, the paper records' table

# Published numbers, by (in, out, model family, score). Every entry names its table.
# Ren et al.'s Table 1 (PixelCNN++; the likelihood ratio's background model trained
# with mutation rate mu and L2 weight lambda, both picked on a validation OOD set).
# Not yet confirmed against the paper's text (the search corpora held its first pages
# only): check before publishing. Serra et al.'s and Nalisnick et al. 2019b's numbers
# for this pair are still to be added from their tables.
PUBLISHED = {
    ("fashion_mnist", "mnist", "PixelCNNPlusPlus", "nll"):
        {"auroc": 0.089, "auprc": 0.320, "fpr80": 1.000, "confirmed": False,
         "source": "Ren et al. 2019, Table 1 (Likelihood)"},
    ("fashion_mnist", "mnist", "PixelCNNPlusPlus", "likelihood_ratio"):
        {"auroc": 0.994, "auprc": 0.993, "fpr80": 0.001, "confirmed": False,
         "source": "Ren et al. 2019, Table 1 (Likelihood Ratio, mu and lambda)"},
}

SCORE_LABELS = {
    "nll": "-log2 p(x) / D",
    "likelihood_ratio": "likelihood ratio (Ren et al.)",
    **{f"complexity-{c}": f"S(x), {c.upper()} (Serra et al.)" for c in COMPRESSORS},
    **{f"typicality-{m}": f"typicality, M = {m} (Nalisnick et al. 2019b)" for m in TYPICALITY_M},
}


def add_command(commands):
    """The `ood` subcommand's parser."""
    from reproduce.threads import positive_int

    ood = commands.add_parser(
        "ood", help="out-of-distribution detection: Fashion-MNIST vs MNIST and the reverse (reproduce/ood.py)",
        description="Scores Fashion-MNIST's test images (in distribution) against MNIST's (out of "
                    "distribution) under the shipped Fashion-MNIST models, and the reverse under the MNIST "
                    "models: negative log-likelihood, Ren et al.'s likelihood ratio, Serra et al.'s "
                    "complexity-corrected score and Nalisnick et al.'s typicality test, with AUROC, AUPRC "
                    "and FPR at 80% TPR. Writes OUT/runs/ood.json, OUT/ood.md and OUT/figures/ood-*.png.")
    ood.add_argument("--data-dir", help="TFDS data directory (default: $TFDS_DATA_DIR, then TFDS's)")
    ood.add_argument("--out", default="out", help="folder for the record, table and figures (default: out/; "
                                                  "maintainers: results)")
    ood.add_argument("--limit", type=positive_int, metavar="N",
                     help="score only the first N images of each split (default: all)")
    ood.add_argument("--batch-size", type=positive_int, default=256, help="images per log_prob call (default: 256)")
    return ood


def main(args):
    """Runs `python -m reproduce ood` from parsed flags (`data_dir`, `out`, `limit`,
    `batch_size`); prints the tables and returns the record."""
    from reproduce import records
    from zoo.files import write_json, write_text

    if args.data_dir and not os.path.isdir(args.data_dir):
        from reproduce.cli_errors import fail
        fail(f"--data-dir {args.data_dir!r} does not exist.")
    commit, start = records.git_commit(), time.time()  # the commit before this run writes into the tree
    pairs = [score_pair(pair, args) for pair in PAIRS]
    record = {"kind": "ood", "limit": args.limit, "pairs": pairs, "wall_seconds": round(time.time() - start, 1),
              "hardware": records.hardware(), "git_commit": commit, "date": records.now()}
    path = write_json(os.path.join(args.out, RECORD), record)
    text = markdown(record)
    write_text(os.path.join(args.out, "ood.md"), text)
    print(text, flush=True)
    print(f"wrote {path}, {os.path.join(args.out, 'ood.md')} and the figures under "
          f"{os.path.join(args.out, 'figures')}", flush=True)
    return record


def load_split(name, split, data_dir, limit):
    """uint8 images `[n, H, W, C]` of a split, its first `limit` when given."""
    from zoo import data

    images = data.load(name, split, data_dir)
    if limit:
        images = images.take(limit)
    return np.concatenate([b.numpy() for b in images.batch(4096)])


def score_pair(pair, args):
    """One direction: every model and score. Returns the pair's part of the record."""
    from zoo import figures, hub, ood

    sets = {"in": load_split(pair["in"], "test", args.data_dir, args.limit),
            "out": load_split(pair["out"], "test", args.data_dir, args.limit)}
    ood.check_same_shape(sets["in"], sets["out"])
    held_out = load_split(pair["in"], "validation", args.data_dir, args.limit)
    # Code lengths in bits per image, shared by every model of the pair.
    code_bits = {c: {k: ood.COMPRESSORS[c](v) for k, v in sets.items()} for c in COMPRESSORS}
    shipped = set(hub.list_models())
    rows, histograms = [], {}
    for name in pair["models"]:
        if name not in shipped:
            rows.append({"model": name, "status": "missing: not a shipped pretrained model"})
            print(f"{name}: missing (not shipped)", flush=True)
            continue
        began = time.time()
        model = hub.load(name)
        nll = {k: ood.negative_log_likelihood(model, v, args.batch_size) for k, v in sets.items()}
        entropy = float(np.mean(ood.negative_log_likelihood(model, held_out, args.batch_size)))
        scores = {"nll": nll}
        background = pair["backgrounds"].get(name)
        if background in shipped:
            bg = hub.load(background)
            ood.check_background(model, bg)
            scores["likelihood_ratio"] = {
                k: ood.ratio(nll[k], ood.negative_log_likelihood(bg, v, args.batch_size)) for k, v in sets.items()}
        for c in COMPRESSORS:
            scores[f"complexity-{c}"] = {
                k: ood.corrected(nll[k] * model.num_dims, code_bits[c][k], model.num_dims) for k in sets}
        for m in TYPICALITY_M:
            scores[f"typicality-{m}"] = {k: ood.typicality_statistic(nll[k], entropy, m) for k in sets}
        row = {"model": name, "status": "scored", "family": type(model).__name__,
               "background": background, "background_status": None if background is None else (
                   "scored" if background in shipped else "missing: not a shipped pretrained model"),
               "images_in": len(sets["in"]), "images_out": len(sets["out"]), "held_out_images": len(held_out),
               "bits_per_dim_in": float(nll["in"].mean()), "bits_per_dim_out": float(nll["out"].mean()),
               "entropy_bits_per_dim": entropy,
               "scores": {s: {**ood.detection_metrics(v["in"], v["out"]),
                              "published": PUBLISHED.get((pair["in"], pair["out"], type(model).__name__, s))}
                          for s, v in scores.items()},
               "seconds": round(time.time() - began, 1)}
        rows.append(row)
        histograms[name] = {f"{pair['in']} test (in)": nll["in"], f"{pair['out']} test (OOD)": nll["out"]}
        print(f"{name}: {row['bits_per_dim_in']:.3f} bits/dim in, {row['bits_per_dim_out']:.3f} out; "
              f"AUROC {row['scores']['nll']['auroc']:.3f} by likelihood ({row['seconds']:.0f} s)", flush=True)
    figure = None
    if histograms:
        figure = os.path.join("figures", f"ood-{pair['in']}-{pair['out']}.png")
        figures.score_histograms(histograms, os.path.join(args.out, figure), xlabel="-log2 p(x) / D (bits/dim)",
                                 title=f"Models trained on {pair['in']}: its test images and {pair['out']}'s")
    return {"in": pair["in"], "out": pair["out"], "models": rows, "figure": figure,
            "code_bits_per_dim": {c: {k: float(v.mean() / np.prod(sets[k].shape[1:])) for k, v in bits.items()}
                                  for c, bits in code_bits.items()}}


def _published(p):
    if not p:
        return "", ""
    mark = "" if p.get("confirmed", True) else " (to confirm)"
    return f"{p['auroc']:.3f} / {p['auprc']:.3f} / {p['fpr80']:.3f}", p["source"] + mark


def markdown(record):
    """OUT/ood.md from the record: per direction, mean bits/dim under each model, then one
    row per model and score with AUROC, AUPRC, FPR80 and the published numbers."""
    lines = ["# Out-of-distribution detection", "",
             "Generated by `python -m reproduce ood` from `runs/ood.json`; do not edit by hand.",
             "Scores: higher = more anomalous; OOD is the positive class (as Ren et al. 2019).",
             "AUROC, AUPRC and FPR at 80% TPR over the test images (typicality: over batches of M",
             "test images, the entropy estimated on the in-distribution validation split).",
             f"Images per set: {'all' if not record['limit'] else record['limit']}. "
             f"{record['hardware']}, commit {record['git_commit']}, {record['date']}, "
             f"{record['wall_seconds'] / 60:.1f} min.", ""]
    for pair in record["pairs"]:
        lines += [f"## {pair['in']} (in) vs {pair['out']} (OOD)", ""]
        if pair["figure"]:
            lines += [f"Bits/dim histograms: [{os.path.basename(pair['figure'])}]({pair['figure']}).", ""]
        lines += ["| model | bits/dim in | bits/dim OOD | OOD more likely | entropy estimate |",
                  "|---|---|---|---|---|"]
        for r in pair["models"]:
            if r["status"] != "scored":
                lines.append(f"| {r['model']} | {r['status']} | | | |")
                continue
            lines.append(f"| {r['model']} | {r['bits_per_dim_in']:.3f} | {r['bits_per_dim_out']:.3f} | "
                         f"{'yes' if r['bits_per_dim_out'] < r['bits_per_dim_in'] else 'no'} | "
                         f"{r['entropy_bits_per_dim']:.3f} |")
        codes = ", ".join(f"{c.upper()} {v['in']:.3f} in / {v['out']:.3f} OOD"
                          for c, v in pair["code_bits_per_dim"].items())
        lines += ["", f"Compressors' mean code lengths, bits/dim: {codes}.", "",
                  "| model | score | AUROC | AUPRC | FPR80 | published AUROC / AUPRC / FPR80 | source |",
                  "|---|---|---|---|---|---|---|"]
        for r in pair["models"]:
            if r["status"] != "scored":
                lines.append(f"| {r['model']} | {r['status']} | | | | | |")
                continue
            if r["background_status"] not in (None, "scored"):
                lines.append(f"| {r['model']} | likelihood ratio: background {r['background']} "
                             f"{r['background_status']} | | | | | |")
            for s, m in r["scores"].items():
                published, source = _published(m["published"])
                lines.append(f"| {r['model']} | {SCORE_LABELS[s]} | {m['auroc']:.3f} | {m['auprc']:.3f} | "
                             f"{m['fpr80']:.3f} | {published} | {source} |")
        lines.append("")
    return "\n".join(lines)
