"""`python -m reproduce compress`: every compressing shipped model on its whole test split,
beside classical lossless codecs run on the same images in the same run.

Per model: its own code length (`zoo.codec.ideal_bits`: -log2 p(x), or the -ELBO for
bits-back coding), one stream holding the whole split (`zoo.codec.compress`), decoded
and compared image by image, its size, overhead and speed, and the mean size of a stream
holding one image (a file per image). Per dataset: PNG, WebP, JPEG 2000 and JPEG XL
files per image, gzip, bz2 and lzma over the raw uint8 array (`zoo.codec.classical`).

Each measurement is its own record, with the commit and machine that made it:
OUT/runs/compress/DATASET/NAME.json per model and OUT/runs/compress/DATASET/classical.json
per dataset, so compressing one model again replaces its record only.
OUT/compression.md is rendered from every record there.
"""

import json
import os
import time
from pathlib import Path

import numpy as np

# Under OUT, one level below runs/*/*.json (the paper records the results table reads).
RECORDS = os.path.join("runs", "compress")
CLASSICAL = "classical"  # each dataset's classical codecs' record name
SINGLE_FILES = 10  # images coded one stream each, for the per-image file size

# Reported elsewhere, bits/dim, for context: each paper's own protocol (whole 10k test
# split unless said), so compare a row with its own source only.
REPORTED = {
    "mnist": [
        ("BB-ANS (VAE, one latent layer)", 1.41, "Townsend et al. 2019 (BB-ANS), their results table; "
                                                 "the table was not re-read for this page"),
        ("bz2", 1.42, "Townsend et al. 2019; their protocol (the whole split as one byte string) "
                      "re-run on TFDS's MNIST gives 1.418"),
        ("gzip", 1.64, "Townsend et al. 2019; the same protocol re-run gives 1.640"),
        ("Bit-Swap (8 latent layers)", 1.29, "Kingma et al. 2019 (Bit-Swap), released results "
                                             "(fhkingma/bitswap plots/mnist*), 100-image batches"),
        ("BB-ANS (8 latent layers)", 1.48, "Kingma et al. 2019, the same released results"),
    ],
}


def add_command(commands):
    """The `compress` subcommand's parser."""
    from reproduce.threads import add_thread_args, positive_int

    p = commands.add_parser(
        "compress", help="lossless compression: every compressing shipped model on its test split "
                         "beside PNG, WebP, JPEG 2000, JPEG XL, gzip, bz2 and lzma (reproduce/compress.py)",
        description="Compresses each compressing pretrained model's whole test split into one stream, "
                    "decodes it and checks every image, and runs classical lossless codecs on the same "
                    "images. Writes OUT/runs/compress/DATASET/NAME.json (one per model, one classical.json per "
                    "dataset) and OUT/compression.md from every record there.")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="pretrained models (default: every one that compresses; see python -m zoo.codec --help)")
    p.add_argument("--data-dir", help="TFDS data directory (default: $TFDS_DATA_DIR, then TFDS's; digits needs none)")
    p.add_argument("--out", default="out", help="folder for the records and table (default: out/; maintainers: results)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="code only the first N test images (default: all)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="images per cached pass of range coding (default: zoo.codec's)")
    add_thread_args(p)
    return p


def main(args):
    """Runs `python -m reproduce compress`: writes each measurement's record and the table."""
    from reproduce import records
    from reproduce.cli_errors import fail
    from reproduce.threads import apply_thread_args
    from zoo import codec, hub
    from zoo.files import write_text

    apply_thread_args(args)
    compressing = codec.compressing_models()
    unknown = [n for n in args.names if n not in compressing]
    if unknown:
        fail(f"{unknown[0]!r} is not a pretrained model that compresses; expected some of {compressing}.")
    if args.data_dir and not os.path.isdir(args.data_dir):
        fail(f"--data-dir {args.data_dir!r} does not exist.")
    names = args.names or compressing
    commit = records.git_commit()  # before this run writes its first record into the tree
    splits = {}
    for name in names:
        dataset = hub.entry(name)["dataset"]
        if dataset not in splits:
            splits[dataset] = test_split(dataset, args.data_dir, args.limit)
            _write(args.out, dataset, CLASSICAL, classical_codecs(
                splits[dataset][0], hub.entry(name)["config"]["num_levels"]), args.limit, commit)
        _write(args.out, dataset, name, model_row(name, *splits[dataset], args.batch_size), args.limit, commit)
    text = markdown(read_records(args.out))
    path = write_text(os.path.join(args.out, "compression.md"), text)
    print(text, flush=True)
    print(f"wrote {os.path.join(args.out, RECORDS)} and {path}", flush=True)


def _write(out, dataset, name, measured, limit, commit):
    """One record: the measurement with where and when (at which commit) it was made."""
    from reproduce import records
    from zoo.files import write_json

    record = {"kind": "compress", "dataset": dataset, "name": name, "limit": limit, **measured,
              "hardware": records.hardware(), "git_commit": commit, "date": records.now()}
    return write_json(os.path.join(out, RECORDS, dataset, f"{name}.json"), record)


def read_records(out):
    """`{dataset: {"classical": record or None, "models": [records, by name]}}` from OUT."""
    found = {}
    for path in sorted(Path(out, RECORDS).glob("*/*.json")):
        record = json.loads(path.read_text())
        entry = found.setdefault(record["dataset"], {"classical": None, "models": []})
        if record["name"] == CLASSICAL:
            entry["classical"] = record
        else:
            entry["models"].append(record)
    return found


def test_split(dataset, data_dir, limit):
    """`(images uint8 [n, H, W, C], labels int32 [n])` of a test split, its first `limit`."""
    from reproduce.cli_errors import fail
    from zoo import data

    try:
        pairs = data.load(dataset, "test", data_dir, with_labels=True)
    except data.DatasetNotPrepared as e:
        fail(f"dataset {dataset!r} is not prepared under {e.data_dir}: on a machine with network run "
             f"`tfds build {e.tfds_name} --data_dir DIR`, then pass --data-dir DIR (or set TFDS_DATA_DIR).")
    if limit:
        pairs = pairs.take(limit)
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in pairs.batch(4096)))
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)


def _timed(fn, *a, **k):
    began = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - began


def model_row(name, images, labels, batch_size):
    """One model's row: its code length, the stream's, the round trip and speeds."""
    from zoo import codec, hub

    coder = codec.codec_for(name)
    labels = labels if hub.entry(name)["config"].get("num_classes") else None
    dims = int(np.prod(images.shape[1:]))
    ideal = codec.ideal_bits(name, images, labels)  # loads the model the streams code with, before the timing
    data, encode_s = _timed(codec.compress, name, images, labels, batch_size=batch_size)
    decoded, decode_s = _timed(codec.decompress, data)
    decoded = decoded[0] if labels is not None else decoded
    if not np.array_equal(decoded, images):
        raise RuntimeError(f"{name}: the decoded images differ from the originals.")
    initial = codec.initial_bits(data)
    n = len(images)
    singles = [len(codec.compress(name, images[i:i + 1], None if labels is None else labels[i:i + 1]))
               for i in range(min(SINGLE_FILES, n))]
    row = {"model": name, "codec": coder.NAME, "images": n,
           "model_bits_per_dim": float(ideal.mean() / dims),
           "stream_bytes": len(data), "initial_bits": initial,
           "stream_bits_per_dim": (8 * len(data) - initial) / (n * dims),
           "single_file_bits_per_dim": 8 * float(np.mean(singles)) / dims, "single_files": len(singles),
           "encode_images_per_second": n / encode_s, "decode_images_per_second": n / decode_s,
           "round_trip": "exact"}
    row["overhead_percent"] = 100 * (row["stream_bits_per_dim"] / row["model_bits_per_dim"] - 1)
    print(f"{name}: model {row['model_bits_per_dim']:.4f} bits/dim, stream {row['stream_bits_per_dim']:.4f} "
          f"({row['overhead_percent']:+.2f}%), {row['encode_images_per_second']:.1f} / "
          f"{row['decode_images_per_second']:.1f} images/s encode / decode", flush=True)
    return row


def classical_codecs(images, num_levels):
    """Bits/dim of each classical codec on `images`, with its seconds: `{"images": n,
    "codecs": {codec: {...}}}`."""
    from zoo.codec import classical

    dims = images.size
    out = {}
    for codec in classical.image_codecs():
        bits, seconds = _timed(classical.image_file_bits, images, num_levels, codec)
        out[codec] = {"bits_per_dim": float(bits.sum() / dims), "per": "image file", "seconds": round(seconds, 1)}
    for codec in classical.ARRAY_CODECS:
        bits, seconds = _timed(classical.array_bits, images, num_levels, codec)
        out[codec] = {"bits_per_dim": bits / dims, "per": "whole split", "seconds": round(seconds, 1)}
    print(", ".join(f"{k} {v['bits_per_dim']:.4f}" for k, v in out.items()), flush=True)
    return {"images": len(images), "codecs": out}


def _cells(row):
    return "| " + " | ".join(row) + " |"


def _provenance(record):
    return f"{record['git_commit']}, {record['date']}"


def markdown(found):
    """OUT/compression.md from `read_records`' records."""
    from zoo.codec.bits_back import ELBO_DRAWS

    lines = ["# Lossless compression", "",
             "Generated by `python -m reproduce compress` from `runs/compress/*/*.json`; do not edit by hand.",
             "Bits/dim on disk: 8 x the bytes of one stream holding the whole test split, over its",
             "pixels (bits-back streams: less the one-off initial bits their first pops read, listed",
             "apart). Overhead: the stream over the model's own code length (-log2 p(x); bits-back: the",
             f"expected -ELBO, its mean over {ELBO_DRAWS} posterior draws an image). Per-image file: the mean size",
             "of a stream holding one image (header and initial bits included). Every image decoded",
             "and compared. Each row is one record, measured at the commit it names.", ""]
    for dataset, entry in found.items():
        lines += [f"## {dataset}", "",
                  _cells(["coder", "images", "bits/dim", "model bits/dim", "overhead", "per-image file bits/dim",
                          "initial bits", "encode images/s", "decode images/s", "measured"]),
                  _cells(["---"] * 10)]
        for r in entry["models"]:
            lines.append(_cells([f"{r['model']} ({r['codec'].replace('_', '-')})", str(r["images"]),
                                 f"**{r['stream_bits_per_dim']:.4f}**", f"{r['model_bits_per_dim']:.4f}",
                                 f"{r['overhead_percent']:+.2f}%", f"{r['single_file_bits_per_dim']:.4f}",
                                 str(r["initial_bits"]), f"{r['encode_images_per_second']:.1f}",
                                 f"{r['decode_images_per_second']:.1f}", _provenance(r)]))
        c = entry["classical"]
        for codec, v in ({} if c is None else c["codecs"]).items():
            lines.append(_cells([f"{codec} ({v['per']})", str(c["images"]), f"{v['bits_per_dim']:.4f}",
                                 "", "", "", "", "", "", _provenance(c)]))
        reported = REPORTED.get(dataset)
        if reported:
            lines += ["", "Reported elsewhere (each paper's protocol):", ""]
            lines += [f"- {what}: {bpd:.2f} bits/dim ({source})" for what, bpd, source in reported]
        hardware = sorted({r["hardware"] for r in [*entry["models"], *([c] if c else [])]})
        lines += ["", f"Machine: {'; '.join(hardware)}.", ""]
    return "\n".join(lines)
