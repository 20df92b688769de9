"""The one driver: `python -m reproduce COMMAND ...`.

    python -m reproduce PAPER [--preset PRESET] [...]   train PAPER's model, score its test split
    python -m reproduce verify [NAME ...]              re-score shipped pretrained models
    python -m reproduce bench [--suite S] [--quick]    our training steps and samplers vs TFP's
    python -m reproduce --list                         papers, presets, datasets, pretrained models

A paper's run writes its record (OUT/runs/PAPER/PRESET-DATASET.json), sample figure
and learning curve (OUT/figures/), regenerates OUT/README.md, and ends by printing its
number beside the repository's record and the published one. OUT is `out/` (ignored
by git) unless `--out` says otherwise; maintainers pass `--out results` to update the
table the repository publishes.
"""

import argparse
import contextlib
import glob
import importlib
import math
import os
import sys
import tempfile
import time

from reproduce.threads import add_thread_args, apply_thread_args, positive_int

PAPERS = ["arm", "pixelcnn", "realnvp", "pixelcnnpp", "glow", "maf", "vae_flows"]
OUT = "out"  # a user's runs: untracked (.gitignore); `--out results` updates the repository's table


class CommandLineError(SystemExit):
    """A bad command line, or data it cannot find: one line on stderr, exit status 2."""

    def __init__(self, message):
        super().__init__(2)
        self.message = message

    def __str__(self):
        return self.message


class Parser(argparse.ArgumentParser):
    """argparse whose errors raise `CommandLineError` (argparse's message, exit status 2)."""

    def error(self, message):
        raise CommandLineError(f"{self.prog}: error: {message}")


def fail(message):
    raise CommandLineError(f"python -m reproduce: error: {message}")


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def paper_module(name):
    if name not in PAPERS:
        fail(f"unknown paper {name!r}; expected one of {PAPERS}.")
    return importlib.import_module(f"reproduce.{name}")


def build_parser():
    p = Parser(prog="python -m reproduce", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true",
                   help="list each paper's presets (model class, dataset), the datasets and the "
                        "pretrained models")
    commands = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    flags = Parser(add_help=False)
    flags.add_argument("--preset", default="cpu", help="a preset of the paper file (default: cpu; see --list)")
    flags.add_argument("--dataset", help="dataset name (default: the preset's; see --list)")
    flags.add_argument("--data-dir", help="TFDS data directory (default: $TFDS_DATA_DIR, then TFDS's; "
                                          "digits needs none)")
    flags.add_argument("--epochs", type=positive_int, help="override the preset's epochs")
    flags.add_argument("--batch-size", type=positive_int, help="override the preset's global batch size")
    flags.add_argument("--out", default=OUT,
                       help=f"folder for the record, figures, table and work files (default: {OUT}/, "
                            f"ignored by git; maintainers: results)")
    flags.add_argument("--resume", action="store_true", help="continue an interrupted run")
    flags.add_argument("--seed", type=non_negative_int, default=0)
    flags.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16", "mixed_float16"],
                       help="Keras dtype policy: convolutions in 16 bits, likelihoods stay float32")
    # zoo.training.precision.CHOICES, spelled here so that --help does not import TensorFlow.
    flags.add_argument("--network-precision", default="auto", choices=["auto", "preset", "float32"],
                       help="a preset's 16-bit network (mixed_precision): auto keeps it only where this "
                            "machine computes it natively (a GPU of compute capability 8.0+, a CPU with "
                            "AVX512_BF16 or AMX), else trains float32 (default); preset keeps it; "
                            "float32 never uses it")
    add_thread_args(flags)
    flags.add_argument("--publish", action="store_true",
                       help="ship the trained weights as pretrained NAME-DATASET in zoo/pretrained/ "
                            "(refused when tracked files have uncommitted changes)")
    for name in PAPERS:
        paper = commands.add_parser(name, parents=[flags], help=f"train and score {name}'s model with a preset",
                                    description=f"Trains {name}'s model with a preset, scores the test split, "
                                                f"writes the record, figures and table under --out.")
        for flag, spec in getattr(paper_module(name), "MODEL_FLAGS", {}).items():  # e.g. vae_flows' --posterior
            paper.add_argument(f"--{flag}", **spec)

    verify = commands.add_parser(
        "verify", help="score the shipped pretrained models on their test splits against their records",
        description="Loads each pretrained model (all by default), scores its dataset's test split in "
                    "float32 and prints the recorded bits/dim, the number now, the difference and ok "
                    "(within 1e-3 bits/dim); exit status 1 when any fails.")
    verify.add_argument("names", nargs="*", metavar="NAME", help="pretrained models (default: all; see --list)")
    verify.add_argument("--data-dir", help="TFDS data directory (default: $TFDS_DATA_DIR, then TFDS's; "
                                           "digits needs none)")
    verify.add_argument("--batch-size", type=positive_int, default=64, help="images per batch (default: 64)")
    verify.add_argument("--modes", type=positive_int, metavar="N",
                        help="also score the first N test images eagerly, in tf.function, by Keras, by "
                             "the exported SavedModel and by a float32 copy (1e-3 nats per image), and "
                             "compare cached with naive samples")

    bench = commands.add_parser(
        "bench", help="time our training steps and samplers against TFP's (reproduce/bench.py)",
        description="Times our training steps and samplers side by side with TFP's: a suite at a time "
                    "(steps: PixelCNN and Glow; maf: MaskedAutoregressiveFlow; quality: bits/dim per "
                    "training second); writes its sections into OUT/benchmarks.json, keeping the other "
                    "suites' there, and OUT/benchmarks.md. gpu: a check for a GPU machine, written to "
                    "OUT/gpu.md and OUT/gpu.json (skipped, exit status 0, where TensorFlow sees no GPU).")
    # The same names as reproduce/bench.py's SUITES (tests/test_bench.py checks).
    bench.add_argument("--suite", choices=("steps", "maf", "quality", "gpu"), default="steps",
                       help="steps: PixelCNN++, Glow and ARM steps and samplers against TFP's, the matmul "
                            "peak (default); maf: MAF and IAF steps and MAF sampling against TFP's; "
                            "quality: PixelCNN++ and Glow cpu presets against TFP's, validation bits/dim "
                            "against training seconds (8-bit MNIST, 20 minutes a side); gpu: two logical "
                            "GPUs against one, and the paper presets' training steps")
    bench.add_argument("--quick", action="store_true", help="tiny shapes, one repetition (seconds; for tests)")
    bench.add_argument("--data-dir", help="TFDS data directory for the quality suite's MNIST (default: "
                                          "$TFDS_DATA_DIR, then TFDS's; --quick uses digits, which needs none)")
    bench.add_argument("--out", default=OUT, help=f"folder for benchmarks.json and benchmarks.md "
                                                  f"(default: {OUT}/; maintainers: results)")
    bench.add_argument("--note", default="", help="a sentence on the conditions of the run, put in the table")
    add_thread_args(bench)
    return p


def main(argv=None):
    """Runs one command line. Returns a paper run's record (verify: its rows; bench: its
    results). A bad command line prints one line and exits 2 (`CommandLineError`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        if args.list:
            quiet_tensorflow()
            return list_papers()
        if args.command is None:
            fail(f"name a paper ({', '.join(PAPERS)}), verify or bench; or pass --list.")
        quiet_tensorflow()
        if args.command == "verify":
            return verify(args)
        if args.command == "bench":
            from reproduce import bench
            return bench.main(args)
        return train(args)
    except CommandLineError as e:
        print(e.message, file=sys.stderr, flush=True)
        raise


# ---- start-up noise ----------------------------------------------------------------

# What TensorFlow's CUDA probe writes on a machine without an NVIDIA driver (before its
# logging is set up, so TF_CPP_MIN_LOG_LEVEL does not reach it): every line is about a GPU
# that is not there, and the first two come once per TF library, so twice.
NO_GPU_NOISE = ("All log messages before absl::InitializeLog() is called",
                "Could not find cuda drivers", "failed call to cuInit")


def gpu_expected():
    """Whether this machine may have a CUDA GPU for TensorFlow (Linux with an NVIDIA driver)."""
    return sys.platform != "linux" or os.path.exists("/proc/driver/nvidia") or bool(glob.glob("/dev/nvidia*"))


@contextlib.contextmanager
def _without_stderr_lines(patterns):
    """Within the block, file descriptor 2 goes to a temporary file; after it, every line
    written there that contains none of `patterns` is written to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(p in line for p in patterns)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def quiet_tensorflow():
    """Imports TensorFlow without its start-up noise: its C++ INFO and WARNING lines off
    (unless TF_CPP_MIN_LOG_LEVEL is set; errors still show), and on a machine with no
    NVIDIA driver the CUDA probe's lines dropped (`NO_GPU_NOISE`; every other line is
    kept). Where a GPU may be, TF reports what it finds."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if gpu_expected():
        return
    with _without_stderr_lines(NO_GPU_NOISE):
        import tensorflow as tf
        tf.config.list_physical_devices("GPU")  # the probe (cuInit) runs here, once


# ---- --list ------------------------------------------------------------------------

def list_papers():
    """Prints each paper's presets (model class, default dataset, datasets with their own
    settings), the datasets and the pretrained models."""
    from zoo import data, hub

    print("Papers: python -m reproduce PAPER --preset PRESET [--dataset NAME]")
    for name in PAPERS:
        paper = paper_module(name)
        print(f"  {name}")
        width = max(map(len, paper.PRESETS))
        for preset_name, preset in paper.PRESETS.items():
            model_class = preset.get("model", {}).get("class", paper.MODEL)
            dataset = preset.get("dataset", paper.DATASET)
            own = []
            for other, override in preset.get("per_dataset", {}).items():
                other_class = override.get("model", {}).get("class", model_class)
                own.append(other if other_class == model_class else f"{other} ({other_class})")
            tuned = f"; own settings for {', '.join(own)}" if own else ""
            print(f"    {preset_name:<{width}}  {model_class} on {dataset}{tuned}")
    print("Datasets (--dataset):")
    width = max(map(len, data.SPECS))
    for s in data.SPECS.values():
        h, w, c = s.image_shape
        where = ("scikit-learn's bundled copy, nothing to prepare" if s.name == "digits"
                 else f"TFDS {s.tfds_name}: prepared under --data-dir or $TFDS_DATA_DIR")
        print(f"  {s.name:<{width}}  {h}x{w}x{c}, {s.num_levels} levels; {where}")
    print("Pretrained models (zoo.load(NAME); python -m reproduce verify [NAME ...]):")
    print("  " + ", ".join(hub.list_models()))


# ---- verify ------------------------------------------------------------------------

def verify(args):
    from reproduce import verify as verify_module
    from zoo import hub

    unknown = [n for n in args.names if n not in hub.list_models()]
    if unknown:
        fail(f"unknown pretrained model {unknown[0]!r}; expected some of {hub.list_models()}.")
    if args.data_dir and not os.path.isdir(args.data_dir):
        fail(f"--data-dir {args.data_dir!r} does not exist.")
    return verify_module.main(args)


# ---- a paper's run -----------------------------------------------------------------

def train(args):
    paper = paper_module(args.command)
    if args.preset not in paper.PRESETS:
        fail(f"unknown preset {args.preset!r} for {args.command}; expected one of {sorted(paper.PRESETS)}.")
    if args.data_dir and not os.path.isdir(args.data_dir):
        fail(f"--data-dir {args.data_dir!r} does not exist.")
    dataset = args.dataset or paper.PRESETS[args.preset].get("dataset", paper.DATASET)
    from zoo import data

    if dataset not in data.SPECS:
        fail(f"unknown dataset {dataset!r} (--dataset); expected one of {sorted(data.SPECS)}.")
    if args.publish:
        require_clean_tree()
    import tensorflow as tf

    apply_thread_args(args)
    try:
        return run(args, paper, resolve_preset(paper, args.preset, dataset), dataset)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as e:
        raise SystemExit(
            f"error: a worker of the cluster stopped responding ({type(e).__name__}). Restart every "
            f"worker with the same command plus --resume: each continues from its last epoch's "
            f"backup under {args.out}/work/.") from e


def require_clean_tree():
    """`--publish` ships weights that name the commit they were trained from: refuse a tree
    whose tracked files differ from that commit."""
    from reproduce import records

    changed = records.uncommitted_changes()
    if changed is None:
        fail("--publish needs a git checkout: the record and the shipped weights name the commit "
             "that trained them.")
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        fail(f"--publish refuses a tree with uncommitted changes to tracked files ({shown}): commit "
             f"or stash them, so the record and the shipped weights name the code that trained them.")


def resolve_preset(paper, name, dataset):
    """A preset's `model` and `train` dicts, with its `per_dataset` overrides for `dataset`
    merged in (e.g. the paper's CIFAR-10 and ImageNet settings under one `paper` preset)."""
    preset = paper.PRESETS[name]
    override = preset.get("per_dataset", {}).get(dataset, {})
    return {part: {**preset.get(part, {}), **override.get(part, {})} for part in ("model", "train")}


def comparison(test, num_dims, recorded, published, recorded_name):
    """Lines that set this run's test number beside the recorded run's and the published one."""
    per_nat = 1.0 / (num_dims * math.log(2.0))

    def row(label, nats, note="", diff=True):
        text = f"  {label:<10}{nats:>11.2f}{nats * per_nat:>11.4f}"
        if diff:
            d = nats - test["nats"]
            text += f"{-d:>+12.2f}{-d * per_nat:>+11.4f}"
        return text + (f"   {note}" if note else "")

    lines = [f"Test split, {test['images']} images (lower is better):",
             f"  {'':<10}{'nats/image':>11}{'bits/dim':>11}{'this run minus it':>23}",
             row("this run", test["nats"], diff=False)]
    if recorded is None:
        lines.append(f"  {'recorded':<10} none ({recorded_name} does not exist)")
    else:
        lines.append(row("recorded", recorded["test_nats"],
                         f"{recorded_name}: commit {recorded['git_commit']}, {recorded['date']}, "
                         f"{recorded['hardware']}"))
    if not published:
        lines.append(f"  {'published':<10} none on file for this dataset")
    else:
        nats = published["nats"] if "nats" in published else published["bits_per_dim"] / per_nat
        split = published.get("split", "test")
        lines.append(row("published", nats, ("" if split == "test" else f"{split} split; ") + published["source"]))
    return lines


def importance_nll(model, images, batch_size):
    """A VAE's test NLL: minus its importance-weighted bound (`log_prob`, the model's
    `importance_samples`), mean nats per image over `images`."""
    import numpy as np
    import tensorflow as tf

    bound = tf.function(model.log_prob)
    return float(np.mean(np.concatenate([-bound(batch).numpy() for batch in images.batch(batch_size)])))


def run(args, paper, preset, dataset):
    import numpy as np

    from reproduce import records
    from zoo import data, figures, hub, training
    from zoo.backup import backup_seconds
    from zoo.models import MODELS

    import keras

    strategy = training.get_strategy()  # first: a multi-worker strategy must precede other TF work
    commit = records.git_commit()  # before the run writes its own figures and weights into the tree
    chief, _ = training.worker(strategy)
    keras.mixed_precision.set_global_policy(args.precision)
    spec = data.spec(dataset)
    train_cfg = dict(preset["train"])
    epochs = args.epochs if args.epochs is not None else train_cfg.get("epochs")
    batch_size = args.batch_size if args.batch_size is not None else train_cfg.get("batch_size")
    train_cfg.pop("epochs", None), train_cfg.pop("batch_size", None)
    model_cfg = dict(preset["model"])
    # A paper's own model flags (vae_flows: --posterior, --prior) set those model arguments;
    # their values name the run's variant, which its record, figures and work folder carry.
    flags = getattr(paper, "MODEL_FLAGS", {})
    model_cfg.update({flag: getattr(args, flag) for flag in flags if getattr(args, flag) is not None})
    variant = "-".join(str(model_cfg.get(flag)) for flag in flags) or None
    tag = f"{args.preset}-{variant}" if variant else args.preset
    # The pretrained name: PAPER-DATASET, or a variant preset's own prefix (e.g. realnvp_ar),
    # or the paper's name for the variant (vae_flows: vae-POSTERIOR).
    prefix = paper.run_name(model_cfg) if hasattr(paper, "run_name") else \
        paper.PRESETS[args.preset].get('name', args.command)
    name = f"{prefix}-{records.slug(dataset)}"
    published = paper.published(dataset, model_cfg) if hasattr(paper, "published") else paper.PUBLISHED.get(dataset)
    run_dir = os.path.join(args.out, "work", args.command, f"{tag}-{records.slug(dataset)}")
    try:
        num_train = data.num_examples(dataset, "train", args.data_dir)
    except data.DatasetNotPrepared as e:
        fail(f"dataset {dataset!r} is not prepared under {e.data_dir}: on a machine with network run "
             f"`tfds build {e.tfds_name} --data_dir DIR`, then pass --data-dir DIR (or set TFDS_DATA_DIR).")
    if batch_size > num_train:
        fail(f"--batch-size {batch_size} exceeds the {num_train} training images of {dataset}.")

    model_class = model_cfg.pop("class", paper.MODEL)  # a preset may pick another class of the paper
    # A 16-bit network is a speed setting: kept where it speeds training.
    model_cfg["mixed_precision"], why = training.network_precision(model_cfg.get("mixed_precision"),
                                                                   args.network_precision)
    if why:
        print(f"{name} ({args.preset}): {why}.", flush=True)

    labelled = model_cfg.get("num_classes") is not None  # class-conditional: (image, label) pairs

    def examples(split):
        return data.load(dataset, split, args.data_dir, with_labels=labelled)

    def build_model():
        return MODELS[model_class](image_shape=spec.image_shape, num_levels=spec.num_levels,
                                   **model_cfg)

    try:
        build_model()  # a preset whose model does not fit the dataset fails here, in one line
    except ValueError as e:
        fail(f"preset {args.preset!r} of {args.command} does not fit {dataset!r}: {e}")
    print(f"{name} ({args.preset}): {model_class} on {dataset}, writing to {args.out}/", flush=True)
    # A resumed run's record states its whole training: the earlier processes' seconds too.
    start = time.time() - (backup_seconds(os.path.join(run_dir, "backup")) if args.resume else 0.0)
    model, history = training.train(
        build_model,
        examples("train"), examples("validation"),
        num_train=num_train,
        run_dir=run_dir, epochs=epochs, batch_size=batch_size, seed=args.seed,
        resume=args.resume, strategy=strategy, **train_cfg)
    test = training.evaluate(model, examples("test"), batch_size)
    if hasattr(model, "elbo"):  # a VAE: test nats are its -ELBO; the importance-weighted bound beside them
        test["nll_nats"] = importance_nll(model, examples("test"), batch_size)
    wall = time.time() - start
    print(f"{name} ({args.preset}): test {test['nats']:.2f} nats/image, "
          f"{test['bits_per_dim']:.4f} bits/dim over {test['images']} images, {wall / 60:.1f} min",
          flush=True)
    if "nll_nats" in test:
        print(f"{name} ({args.preset}): those are the test -ELBO; test NLL (importance-weighted bound, "
              f"{model.importance_samples} samples) {test['nll_nats']:.2f} nats/image", flush=True)
    if not chief:
        return None  # the chief writes the record, figures and pretrained weights

    stem = f"{args.command}-{tag}-{records.slug(dataset)}"
    # A class-conditional model draws one class per row of the grid.
    by_row = {"labels": (np.arange(64) // 8) % model.num_classes} if labelled else {}
    samples = model.sample(64, temperature=1.0, seed=args.seed, **by_row)
    figures.sample_grid(samples, spec.num_levels, os.path.join(args.out, "figures", f"{stem}.png"),
                        title=f"{name} ({args.preset}): {test['bits_per_dim']:.3f} bits/dim")
    figures.learning_curve(history, os.path.join(args.out, "figures", f"{stem}-curve.png"),
                           title=f"{name} ({args.preset})")
    if getattr(paper, "TEMPERATURES", None):  # a paper file may ask for a temperature sweep
        figures.temperature_sweep(
            {t: model.sample(10, temperature=t, seed=args.seed) for t in paper.TEMPERATURES},
            spec.num_levels, os.path.join(args.out, "figures", f"{stem}-temperatures.png"),
            title=f"{name} ({args.preset}): samples by temperature")
    if hasattr(model, "elbo"):  # a VAE: test images (odd rows) over their reconstructions
        originals = next(iter(examples("test").batch(32))).numpy()
        rebuilt = model.decode(model.encode(originals)[0]).numpy()
        pairs = np.stack([originals.reshape(4, 8, *spec.image_shape), rebuilt.reshape(4, 8, *spec.image_shape)], 1)
        figures.sample_grid(pairs.reshape(64, *spec.image_shape), spec.num_levels,
                            os.path.join(args.out, "figures", f"{stem}-reconstructions.png"),
                            title=f"{name} ({args.preset}): test images over their reconstructions")
    if hasattr(model, "interpolate"):  # a latent path between the first two test images
        first = next(iter(examples("test").batch(2)))  # a conditional model: the first's label
        pair, label = (first[0].numpy(), {"label": int(first[1][0])}) if labelled else (first.numpy(), {})
        figures.interpolation(model.interpolate(pair[0], pair[1], num=8, **label), spec.num_levels,
                              os.path.join(args.out, "figures", f"{stem}-interpolation.png"),
                              title=f"{name} ({args.preset}): latent interpolation")
    record = {
        "paper": args.command, "model": model_class, "dataset": dataset, "preset": args.preset,
        "split": "test", "test_images": test["images"], "test_nats": test["nats"],
        "test_bits_per_dim": test["bits_per_dim"],
        "published": published,
        **({"variant": variant} if variant else {}),
        **({"test_nll_nats": test["nll_nats"], "importance_samples": model.importance_samples}
           if "nll_nats" in test else {}),
        "parameters": int(sum(np.prod(v.shape) for v in model.trainable_weights)),
        "config": model.get_config(), "train": {**preset["train"], "epochs": epochs,
                                                "batch_size": batch_size, "seed": args.seed,
                                                "precision": args.precision},
        "epochs": len(history), "steps": len(history) * (
            num_train // batch_size),
        "wall_seconds": round(wall, 1), "hardware": records.hardware(),
        "git_commit": commit, "date": records.now(),
        "history": [{"epoch": int(r["epoch"]) + 1, "train_bits_per_dim": r["loss"],
                     "val_bits_per_dim": r.get("val_loss")} for r in history],
    }
    # The repository's record of this run, read before a run into results/ replaces it.
    recorded = records.read_record(records.RESULTS, args.command, args.preset, dataset, variant)
    path = records.write_record(args.out, record)
    records.regenerate_table(args.out)
    print(f"wrote {path} and {os.path.join(args.out, 'README.md')}")
    if os.path.realpath(args.out) != os.path.realpath(records.RESULTS):
        print("(the repository's table, results/README.md, changes only with --out results)")
    recorded_name = f"results/runs/{args.command}/{tag}-{records.slug(dataset)}.json"
    print("\n".join(comparison(test, model.num_dims, recorded, published, recorded_name)), flush=True)
    if args.publish:
        entry = hub.publish(name, model, record)
        print(f"published pretrained {entry['name']} (sha256 {entry['sha256'][:12]}...)")
    return record


if __name__ == "__main__":
    main()
