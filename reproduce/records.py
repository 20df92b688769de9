"""Run records (`results/runs/NAME/PRESET-DATASET.json`) and the table built from them."""

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

import tensorflow as tf

from zoo.files import write_json, write_text
from zoo.training import precision


def slug(dataset):
    """A dataset name as a file-name part: "downsampled_imagenet/32x32" -> "downsampled_imagenet-32x32"."""
    return dataset.replace("/", "-")


# The repository's records and table (`--out results`); a user's runs go elsewhere.
RESULTS = Path(__file__).resolve().parent.parent / "results"


def record_path(out, paper, preset, dataset, variant=None):
    """`out/runs/PAPER/PRESET-DATASET.json`, or `PRESET-VARIANT-DATASET.json` for a variant
    (vae_flows: its posterior and prior)."""
    return Path(out) / "runs" / paper / f"{preset}{'-' + variant if variant else ''}-{slug(dataset)}.json"


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name ("AMD EPYC"), or the platform's processor where `cpuinfo`
    cannot be read."""
    return precision.cpuinfo_value(("model name",), cpuinfo) or platform.processor() or platform.machine()


def hardware(cpuinfo="/proc/cpuinfo"):
    """The record's machine: its GPUs, then the CPU's cores, model, architecture and the
    16-bit matmul flags its 16-bit networks need ("2 CPU cores (AMD EPYC, x86_64,
    avx512_bf16)"), which decide how fast a preset trains."""
    gpus = tf.config.list_physical_devices("GPU")
    details = [tf.config.experimental.get_device_details(g).get("device_name", "GPU") for g in gpus]
    sixteen = sorted(set().union(*precision.CPU_FLAGS.values()) & (precision.cpu_flags(cpuinfo) or set()))
    cpu = f"{os.cpu_count()} CPU cores ({', '.join([cpu_model(cpuinfo), platform.machine(), *sixteen])})"
    return f"{len(gpus)}x {details[0]}, {cpu}" if gpus else cpu


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, cwd=Path(__file__).parent).stdout
        return out.stdout.strip() + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def uncommitted_changes():
    """Paths of tracked files with uncommitted changes (untracked files aside), or None
    when the code does not run from a git checkout."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
    except (OSError, subprocess.CalledProcessError):
        return None
    return [line[3:] for line in out.stdout.splitlines() if line.strip()]


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def read_record(out, paper, preset, dataset, variant=None):
    """The record a run of `paper`'s `preset` on `dataset` wrote under `out`, or None."""
    path = record_path(out, paper, preset, dataset, variant)
    return json.loads(path.read_text()) if path.is_file() else None


def write_record(out, record):
    return write_json(record_path(out, record["paper"], record["preset"], record["dataset"], record.get("variant")),
                      record)


def _published(p):
    if not p:
        return "", ""
    value = f"{p['nats']} nats" if "nats" in p else f"{p['bits_per_dim']}"
    if p.get("split", "test") != "test":
        value += f" ({p['split']})"
    return value, p["source"]


def table(out):
    """The results table (Markdown) from every record under `out/runs`."""
    rows, vae_rows = [], []
    for path in sorted(Path(out).glob("runs/*/*.json")):
        r = json.loads(path.read_text())
        published, source = _published(r.get("published"))
        figure = f"[samples](figures/{path.parent.name}-{path.stem}.png)"
        if path.with_suffix(".md").exists():  # the run's lab notes: trials, per-epoch numbers
            figure += f", [notes](runs/{path.parent.name}/{path.stem}.md)"
        if "test_nll_nats" in r:  # a VAE: its -ELBO and importance-weighted NLL, in their own section
            nll = r.get("published") or {}
            published += f" / {nll['nll_nats']}" if "nll_nats" in nll else ""
            vae_rows.append(
                f"| {r['config']['posterior']} | {r['config']['prior']} | {r['dataset']} | {r['preset']} | "
                f"{r['test_nats']:.2f} | {r['test_nll_nats']:.2f} ({r['importance_samples']}) | {published} | "
                f"{source} | {r['steps']} | {r['wall_seconds'] / 60:.1f} min | {r['hardware']} | "
                f"{r['git_commit']} | {figure} |")
            continue
        rows.append(
            f"| {r['paper']} | {r['dataset']} | {r['preset']} | {r['test_nats']:.2f} | "
            f"{r['test_bits_per_dim']:.4f} | {published} | {source} | {r['steps']} | "
            f"{r['wall_seconds'] / 60:.1f} min | {r['hardware']} | {r['git_commit']} | {figure} |")
    head = [
        "# Results",
        "",
        "Generated by `python -m reproduce` from `runs/*/*.json`; do not edit by hand.",
        "Test split, one record per finished run: nats per image and bits/dim.",
        "",
        "| model | dataset | preset | test nats | test bits/dim | published | source | steps | wall | hardware | commit | figure |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    vae = [] if not vae_rows else [
        "",
        "## VAEs",
        "",
        "Test -ELBO (the bound the model trains on) and test NLL: minus the importance-weighted bound",
        "with K samples (K in brackets), a bound that tightens with K, not an exact likelihood;",
        "nats per image. Published: -ELBO / NLL.",
        "",
        "| posterior | prior | dataset | preset | test -ELBO | test NLL (K) | published | source | steps | wall | hardware | commit | figure |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ] + vae_rows
    return "\n".join(head + rows + vae) + "\n"


def regenerate_table(out):
    return write_text(Path(out) / "README.md", table(out))
