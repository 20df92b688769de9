"""The one driver: `python -m reproduce COMMAND ...`.

    python -m reproduce PAPER [--preset PRESET] [...]   train PAPER's model, score its test split
    python -m reproduce verify [NAME ...]              re-score shipped pretrained models
    python -m reproduce bench [--suite S] [--quick]    our training steps and samplers vs TFP's
    python -m reproduce ood [--limit N]                out-of-distribution detection, Fashion-MNIST vs MNIST
    python -m reproduce compress [NAME ...]            lossless compression with the shipped models vs PNG, gzip...
    python -m reproduce --list                         papers, presets, datasets, pretrained models

A paper's run writes its record (OUT/runs/PAPER/PRESET-DATASET.json), sample figure
and learning curve (OUT/figures/), regenerates OUT/README.md, and ends by printing its
number beside the repository's record and the published one. OUT is `out/` (ignored
by git) unless `--out` says otherwise; maintainers pass `--out results` to update the
table the repository publishes.
"""

import argparse
import math
import os
import shlex
import sys
import time

from reproduce import compress, ood
from reproduce.cli_errors import CommandLineError, fail, not_prepared
from reproduce.runs import PAPERS, Run, get_paper
from reproduce.threads import add_thread_args, apply_thread_args, positive_int

OUT = "out"  # a user's runs: untracked (.gitignore); `--out results` updates the repository's table


class Parser(argparse.ArgumentParser):
    """argparse whose errors raise `CommandLineError` (argparse's message, exit status 2)."""

    def error(self, message):
        raise CommandLineError(f"{self.prog}: error: {message}")


def non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def build_parser():
    p = Parser(prog="python -m reproduce", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true",
                   help="list each paper's presets (model class, dataset), the datasets and the "
                        "pretrained models, then exit")
    commands = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    flags = run_flags()
    for name in PAPERS:
        paper = commands.add_parser(name, parents=[flags], help=f"train and score {name}'s model with a preset",
                                    description=f"Trains {name}'s model with a preset, scores the test split, "
                                                f"writes the record, figures and table under --out.")
        for flag, spec in get_paper(name).flags.items():  # e.g. vae_flows' --posterior
            paper.add_argument(f"--{flag}", **spec)
    add_verify_command(commands)
    add_bench_command(commands)
    ood.add_command(commands)
    compress.add_command(commands)
    return p


def run_flags():
    """The flags every paper's command takes (a parent parser)."""
    flags = Parser(add_help=False)
    flags.add_argument("--preset", default="cpu", help="a preset of the paper file (default: cpu; see --list)")
    flags.add_argument("--dataset", help="dataset name (default: the preset's; see --list)")
    flags.add_argument("--data-dir", help="TFDS data directory (default: $TFDS_DATA_DIR, then TFDS's; "
                                          "digits needs none)")
    flags.add_argument("--epochs", type=positive_int, help="epochs to train at most (default: the preset's)")
    flags.add_argument("--batch-size", type=positive_int,
                       help="global batch size, over all replicas (default: the preset's)")
    flags.add_argument("--out", default=OUT,
                       help=f"folder for the record, figures, table and work files (default: {OUT}/, "
                            f"ignored by git; maintainers: results)")
    flags.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from its last epoch's backup under OUT/work/ "
                            "(without it: a fresh start)")
    flags.add_argument("--seed", type=non_negative_int, default=0,
                       help="seed of the weights' initialization, the batches' order and noise, and the "
                            "figures' samples (default: 0)")
    # zoo.training.precision.CHOICES, spelled here so that --help does not import TensorFlow.
    flags.add_argument("--mixed-precision", default="auto", choices=["auto", "preset", "none", "bfloat16", "float16"],
                       help="the network's 16-bit compute (the model's mixed_precision; likelihoods stay "
                            "float32): auto keeps the preset's only where this machine computes it natively "
                            "(a GPU of compute capability 8.0+, a CPU with AVX512_BF16 or AMX), else trains "
                            "float32 (default); preset keeps it; none: float32; bfloat16 or float16 for any "
                            "preset")
    add_thread_args(flags)
    flags.add_argument("--publish", action="store_true",
                       help="ship the trained weights as pretrained NAME-DATASET in zoo/pretrained/ "
                            "(refused when tracked files have uncommitted changes)")
    return flags


def add_verify_command(commands):
    verify = commands.add_parser(
        "verify", help="score the shipped pretrained models on their test splits against their records",
        description="Loads each pretrained model (all by default), scores its dataset's test split in "
                    "float32 and prints the recorded bits/dim, the number now, the difference, ok "
                    "(within 1e-3 bits/dim) and the run record it was compared with; exit status 1 "
                    "when a number disagrees or a model has no record, 2 when a dataset is not prepared.")
    verify.add_argument("names", nargs="*", metavar="NAME", help="pretrained models (default: all; see --list)")
    verify.add_argument("--data-dir", help="TFDS data directory (default: $TFDS_DATA_DIR, then TFDS's; "
                                           "digits needs none)")
    verify.add_argument("--batch-size", type=positive_int, default=64, help="images per batch (default: 64)")
    verify.add_argument("--modes", type=positive_int, metavar="N",
                        help="also score the first N test images eagerly, in tf.function, by Keras, by "
                             "the exported SavedModel and by a float32 copy (1e-3 nats per image), and "
                             "compare cached with naive samples (default: off)")


def add_bench_command(commands):
    bench = commands.add_parser(
        "bench", help="time our training steps and samplers against TFP's (reproduce/bench/)",
        description="Times our training steps and samplers side by side with TFP's: a suite at a time "
                    "(steps: PixelCNN and Glow; maf: MaskedAutoregressiveFlow; quality: bits/dim per "
                    "training second); writes its sections into OUT/benchmarks.json, keeping the other "
                    "suites' there, and OUT/benchmarks.md. gpu: a check for a GPU machine, written to "
                    "OUT/gpu.md and OUT/gpu.json (skipped, exit status 0, where TensorFlow sees no GPU).")
    from reproduce.bench import SUITES  # imports no TensorFlow

    bench.add_argument("--suite", choices=SUITES, default="steps",
                       help="steps: PixelCNN++, Glow and ARM steps and samplers against TFP's, the matmul "
                            "peak (default); maf: MAF and IAF steps and MAF sampling against TFP's; "
                            "quality: PixelCNN++ and Glow cpu presets against TFP's, validation bits/dim "
                            "against training seconds (8-bit MNIST, 20 minutes a side); gpu: two logical "
                            "GPUs against one, and the paper presets' training steps")
    bench.add_argument("--quick", action="store_true",
                       help="tiny shapes, one repetition (seconds; for tests)")
    bench.add_argument("--data-dir", help="TFDS data directory for the quality suite's MNIST (default: "
                                          "$TFDS_DATA_DIR, then TFDS's; --quick uses digits, which needs none)")
    bench.add_argument("--out", default=OUT, help=f"folder for benchmarks.json and benchmarks.md "
                                                  f"(default: {OUT}/; maintainers: results)")
    bench.add_argument("--note", default="",
                       help="a sentence on the conditions of the run, put in the table (default: none)")
    add_thread_args(bench)


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
        if args.command == "ood":
            return ood.main(args)
        if args.command == "compress":
            return compress.main(args)
        return train(args)
    except CommandLineError as e:
        print(e.message, file=sys.stderr, flush=True)
        raise
    except KeyboardInterrupt as e:  # Ctrl-C: one line, not Keras' traceback
        print(interrupted(argv, e), file=sys.stderr, flush=True)
        raise SystemExit(130) from None


# ---- start-up noise and Ctrl-C ------------------------------------------------------

def quiet_tensorflow():
    """Imports zoo, and so TensorFlow without its start-up noise (`zoo._quiet`), once a
    command needs it (`--help` stays fast). A folder named zoo that hides the package is
    one line (`CommandLineError`)."""
    import zoo

    if getattr(zoo, "__file__", None) is None:  # a namespace package: a folder, not the package
        fail(f"`import zoo` found the folder {list(zoo.__path__)[0]}, not the package zoo: a folder "
             f"named zoo in the current folder (a clone named zoo, seen from its parent) hides the "
             f"installed package; run from another folder.")


def interrupted(argv, error):
    """The one line a Ctrl-C prints: for a paper's training, the epoch it reached, that its
    backup is safe and the command that resumes it (this command line plus --resume)."""
    again = "python -m reproduce " + shlex.join(argv)
    training = sys.modules.get("zoo.training")  # imported once a run has started
    if training is None or not isinstance(error, training.TrainingInterrupted):
        return f"Interrupted. Run it again with: {again}"
    if not error.epochs:
        return f"{error.describe()}; start again with: {again}"
    return f"{error.describe()}; resume with: {again}{'' if '--resume' in argv else ' --resume'}"


# ---- --list ------------------------------------------------------------------------

def list_papers():
    """Prints each paper's presets (model class, default dataset, datasets with their own
    settings), the datasets and the pretrained models with their records' parameter counts
    (`zoo.training.count_parameters`)."""
    import json

    from reproduce.verify import record_path
    from zoo import data, hub

    print("Papers: python -m reproduce PAPER --preset PRESET [--dataset NAME]")
    for name in PAPERS:
        paper = get_paper(name)
        print(f"  {name}")
        width = max(map(len, paper.presets))
        for preset_name, preset in paper.presets.items():
            r = Run(paper, preset_name)
            model_class, dataset = r.model_class, r.dataset
            own = []
            for other in preset.get("per_dataset", {}):
                other_class = Run(paper, preset_name, other).model_class
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
    print("Pretrained models (zoo.load(NAME); python -m reproduce verify [NAME ...]) and their "
          "trainable parameters:")
    width = max(map(len, hub.list_models()))
    for name in hub.list_models():
        path = record_path(hub.entry(name))
        count = json.loads(path.read_text()).get("parameters") if path and path.is_file() else None
        print(f"  {name:<{width}}  " + ("(no record)" if count is None else f"{count:>10,}"))


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

def paper_run(args):
    """The `Run` a paper's command line names; a one-line `CommandLineError` for a preset,
    dataset or data directory it cannot run."""
    paper = get_paper(args.command)
    if args.preset not in paper.presets:
        fail(f"unknown preset {args.preset!r} for {args.command}; expected one of {sorted(paper.presets)}.")
    if args.data_dir and not os.path.isdir(args.data_dir):
        fail(f"--data-dir {args.data_dir!r} does not exist.")
    r = Run(paper, args.preset, args.dataset, {flag: vars(args)[flag] for flag in paper.flags},
            args.mixed_precision)
    from zoo import data

    if r.dataset not in data.SPECS:
        fail(f"unknown dataset {r.dataset!r} (--dataset); expected one of {sorted(data.SPECS)}.")
    return r


def train(args):
    r = paper_run(args)
    if args.publish:
        require_clean_tree()
    import tensorflow as tf

    apply_thread_args(args)
    try:
        return run(args, r)
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


def label(r):
    """How a run's lines and figure titles name it: "NAME (PRESET)"."""
    return f"{r.pretrained_name} ({r.preset})"


def run(args, r):
    """Trains, scores, draws and records the `Run` `r` as its command line `args` asks;
    returns its record (None on a worker that is not the chief)."""
    from reproduce import records
    from zoo import training

    strategy = training.get_strategy()  # first: a multi-worker strategy must precede other TF work
    commit = records.git_commit()  # before the run writes its own figures and weights into the tree
    chief, _ = training.worker(strategy)
    start = time.time()
    model, history, schedule = fit(args, r, strategy)
    test = evaluate(args, r, model, schedule["batch_size"])
    wall = time.time() - start + schedule["earlier_seconds"]
    print(f"{label(r)}: test {test['nats']:.2f} nats/image, {test['bits_per_dim']:.4f} bits/dim over "
          f"{test['images']} images, {wall / 60:.1f} min", flush=True)
    if "nll_nats" in test:
        print(f"{label(r)}: those are the test -ELBO; test NLL (importance-weighted bound, "
              f"{model.importance_samples} samples) {test['nll_nats']:.2f} nats/image", flush=True)
    if not chief:
        return None  # the chief writes the record, figures and pretrained weights
    artifacts(args, r, model, history, test)
    return record(args, r, model, history, test, {**schedule, "wall": wall, "commit": commit})


def fit(args, r, strategy):
    """Trains `r`'s model with the flags' epochs, batch size, seed and resumption; returns
    the model, its history and the schedule (`epochs`, `batch_size`, `num_train` and the
    earlier processes' training seconds of a resumed run)."""
    from zoo import data, training
    from zoo.training.backup import backup_seconds

    train_cfg = r.train_config
    epochs, batch_size = train_cfg.pop("epochs", None), train_cfg.pop("batch_size", None)
    epochs = args.epochs if args.epochs is not None else epochs
    batch_size = args.batch_size if args.batch_size is not None else batch_size
    try:
        num_train = data.num_examples(r.dataset, "train", args.data_dir)
    except data.DatasetNotPrepared as e:
        fail(not_prepared(e))
    if batch_size > num_train:
        fail(f"--batch-size {batch_size} exceeds the {num_train} training images of {r.dataset}.")
    if r.precision_note:  # a 16-bit network is a speed setting: kept where it speeds training
        print(f"{label(r)}: {r.precision_note}.", flush=True)
    try:
        r.build_model()  # a preset whose model does not fit the dataset fails here, in one line
    except ValueError as e:
        fail(f"preset {r.preset!r} of {r.paper.name} does not fit {r.dataset!r}: {e}")
    print(f"{label(r)}: {r.model_class} on {r.dataset}, writing to {args.out}/", flush=True)
    work = str(r.work_dir(args.out))
    # A resumed run's record states its whole training: the earlier processes' seconds too.
    earlier = backup_seconds(os.path.join(work, "backup")) if args.resume else 0.0
    model, history = training.train(
        r.build_model, r.examples("train", args.data_dir), r.examples("validation", args.data_dir),
        num_train=num_train, run_dir=work, epochs=epochs, batch_size=batch_size, seed=args.seed,
        resume=args.resume, strategy=strategy, **train_cfg)
    return model, history, {"epochs": epochs, "batch_size": batch_size, "num_train": num_train,
                            "earlier_seconds": earlier}


def evaluate(args, r, model, batch_size):
    """The test split's nats and bits/dim (`zoo.training.evaluate`); for a model with an
    ELBO (whose Keras loss is the -ELBO) also `nll_nats`, the importance-weighted bound."""
    from zoo import training

    test = training.evaluate(model, r.examples("test", args.data_dir), batch_size)
    if "elbo" in model.capabilities:
        test["nll_nats"] = importance_nll(model, r.examples("test", args.data_dir), batch_size)
    return test


def artifacts(args, r, model, history, test):
    """The run's figures under OUT/figures/: samples (one class a row for a conditional
    model), the learning curve, and where they apply a temperature sweep (the paper's
    temperatures), reconstructions (a model with an ELBO) and a latent interpolation."""
    import numpy as np

    from zoo import data, figures

    spec = data.spec(r.dataset)
    by_row = {"labels": (np.arange(64) // 8) % model.num_classes} if r.labelled else {}
    figures.sample_grid(model.sample(64, temperature=1.0, seed=args.seed, **by_row), spec.num_levels,
                        r.figure(args.out), title=f"{label(r)}: {test['bits_per_dim']:.3f} bits/dim")
    figures.learning_curve(history, r.figure(args.out, "-curve"), title=label(r))
    if r.paper.temperatures:
        figures.temperature_sweep(
            {t: model.sample(10, temperature=t, seed=args.seed) for t in r.paper.temperatures},
            spec.num_levels, r.figure(args.out, "-temperatures"), title=f"{label(r)}: samples by temperature")
    if "elbo" in model.capabilities:  # test images (odd rows) over their reconstructions
        originals = next(iter(r.examples("test", args.data_dir).batch(32))).numpy()
        rebuilt = model.decode(model.encode(originals)).numpy()
        pairs = np.stack([originals.reshape(4, 8, *spec.image_shape), rebuilt.reshape(4, 8, *spec.image_shape)], 1)
        figures.sample_grid(pairs.reshape(64, *spec.image_shape), spec.num_levels,
                            r.figure(args.out, "-reconstructions"),
                            title=f"{label(r)}: test images over their reconstructions")
    if "interpolate" in model.capabilities:  # a latent path between the first two test images
        first = next(iter(r.examples("test", args.data_dir).batch(2)))  # conditional: the first's label
        pair, given = (first[0].numpy(), {"label": int(first[1][0])}) if r.labelled else (first.numpy(), {})
        figures.interpolation(model.interpolate(pair[0], pair[1], num=8, **given), spec.num_levels,
                              r.figure(args.out, "-interpolation"), title=f"{label(r)}: latent interpolation")


def record(args, r, model, history, test, facts):
    """Writes the run's record and OUT/README.md, prints the comparison with the
    repository's record and the published number, publishes with `--publish`; returns the
    record. `facts`: the schedule (`epochs`, `batch_size`, `num_train`), `wall` seconds and
    the `commit`."""
    from reproduce import records
    from zoo import hub, training

    rec = {
        "paper": r.paper.name, "model": r.model_class, "dataset": r.dataset, "preset": r.preset,
        "split": "test", "test_images": test["images"], "test_nats": test["nats"],
        "test_bits_per_dim": test["bits_per_dim"], "published": r.published,
        **({"variant": r.variant} if r.variant else {}),
        **({"test_nll_nats": test["nll_nats"], "importance_samples": model.importance_samples}
           if "nll_nats" in test else {}),
        "parameters": training.count_parameters(model),  # as the training line states it
        "config": model.get_config(),
        "train": {**r.train_config, "epochs": facts["epochs"], "batch_size": facts["batch_size"],
                  "seed": args.seed, "mixed_precision": args.mixed_precision},
        "epochs": len(history), "steps": len(history) * (facts["num_train"] // facts["batch_size"]),
        "wall_seconds": round(facts["wall"], 1), "hardware": records.hardware(),
        "git_commit": facts["commit"], "date": records.now(),
        "history": [{"epoch": int(h["epoch"]) + 1, "train_bits_per_dim": h["loss"],
                     "val_bits_per_dim": h.get("val_loss")} for h in history],
    }
    # The repository's record of this run, read before a run into results/ replaces it.
    recorded = records.read_record(records.RESULTS, r.paper.name, r.preset, r.dataset, r.variant)
    path = records.write_record(args.out, rec)
    records.regenerate_table(args.out)
    print(f"wrote {path} and {os.path.join(args.out, 'README.md')}")
    if os.path.realpath(args.out) != os.path.realpath(records.RESULTS):
        print("(the repository's table, results/README.md, changes only with --out results)")
    shown = r.record_path(records.RESULTS).relative_to(records.RESULTS.parent)
    print("\n".join(comparison(test, model.num_dims, recorded, r.published, shown)), flush=True)
    if args.publish:
        entry = hub.publish(r.pretrained_name, model, rec)
        print(f"published pretrained {entry['name']} (sha256 {entry['sha256'][:12]}...)")
    return rec


if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        if e.code != 130:
            raise
        # After Ctrl-C, TensorFlow's threads may be stopped mid-op; the interpreter's teardown
        # can then crash (SIGSEGV) after the one-line message. The backups are already safe.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
