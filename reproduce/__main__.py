"""The one driver: `python -m reproduce NAME --preset PRESET [...]`.

Trains the paper NAME's model with a preset under `tf.distribute`, evaluates the
test split, writes the run record, the sample figure and the learning curve, and
regenerates the results table. `python -m reproduce --list` lists papers and presets.
"""

import argparse
import importlib
import os
import sys
import time

from reproduce.threads import add_thread_args, apply_thread_args

PAPERS = ["arm", "pixelcnn", "realnvp", "pixelcnnpp", "glow"]


def paper_module(name):
    if name not in PAPERS:
        raise SystemExit(f"error: unknown paper {name!r}; expected one of {PAPERS}.")
    return importlib.import_module(f"reproduce.{name}")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m reproduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paper", nargs="?", help=f"one of {PAPERS}")
    p.add_argument("--list", action="store_true", help="list papers, presets and datasets")
    p.add_argument("--preset", default="cpu", help="smoke | cpu | paper presets of the paper file")
    p.add_argument("--dataset", help="dataset name (default: the paper file's DATASET)")
    p.add_argument("--data-dir", help="TFDS data directory (default: $TFDS_DATA_DIR, then TFDS's)")
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--batch-size", type=int, help="override the preset's global batch size")
    p.add_argument("--out", default="results", help="results folder (default: results/)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16", "mixed_float16"],
                   help="Keras dtype policy: convolutions in 16 bits, likelihoods stay float32")
    add_thread_args(p)
    p.add_argument("--publish", action="store_true",
                   help="ship the trained weights as pretrained NAME-DATASET in zoo/pretrained/")
    args = p.parse_args(argv)
    if not args.list and not args.paper:
        p.error("name a paper, or pass --list")
    return args


def list_papers():
    for name in PAPERS:
        m = paper_module(name)
        print(f"{name}: model {m.MODEL}, default dataset {m.DATASET}, presets {sorted(m.PRESETS)}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # `python -m reproduce bench [--quick] [--out DIR]`: reproduce/bench.py
        from reproduce import bench
        return bench.main(argv[1:])
    args = parse_args(argv)
    if args.list:
        return list_papers()
    paper = paper_module(args.paper)
    if args.preset not in paper.PRESETS:
        raise SystemExit(f"error: unknown preset {args.preset!r} for {args.paper}; "
                         f"expected one of {sorted(paper.PRESETS)}.")
    if args.data_dir and not os.path.isdir(args.data_dir):
        raise SystemExit(f"error: --data-dir {args.data_dir!r} does not exist.")
    dataset = args.dataset or paper.PRESETS[args.preset].get("dataset", paper.DATASET)
    import tensorflow as tf

    apply_thread_args(args)
    try:
        return run(args, paper, resolve_preset(paper, args.preset, dataset), dataset)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as e:
        raise SystemExit(
            f"error: a worker of the cluster stopped responding ({type(e).__name__}). Restart every "
            f"worker with the same command plus --resume: each continues from its last epoch's "
            f"backup under {args.out}/work/.") from e


def resolve_preset(paper, name, dataset):
    """A preset's `model` and `train` dicts, with its `per_dataset` overrides for `dataset`
    merged in (e.g. the paper's CIFAR-10 and ImageNet settings under one `paper` preset)."""
    preset = paper.PRESETS[name]
    override = preset.get("per_dataset", {}).get(dataset, {})
    return {part: {**preset.get(part, {}), **override.get(part, {})} for part in ("model", "train")}


def run(args, paper, preset, dataset):
    import numpy as np

    from reproduce import records
    from zoo import data, figures, hub, training
    from zoo.models import MODELS

    import keras

    strategy = training.get_strategy()  # first: a multi-worker strategy must precede other TF work
    commit = records.git_commit()  # before the run writes its own figures and weights into the tree
    chief, _ = training.worker(strategy)
    keras.mixed_precision.set_global_policy(args.precision)
    spec = data.spec(dataset)
    train_cfg = dict(preset["train"])
    epochs = args.epochs or train_cfg.pop("epochs")
    batch_size = args.batch_size or train_cfg.pop("batch_size")
    train_cfg.pop("epochs", None), train_cfg.pop("batch_size", None)
    name = f"{args.paper}-{records.slug(dataset)}"
    run_dir = os.path.join(args.out, "work", args.paper, f"{args.preset}-{records.slug(dataset)}")

    model_cfg = dict(preset["model"])
    model_class = model_cfg.pop("class", paper.MODEL)  # a preset may pick another class of the paper

    labelled = model_cfg.get("num_classes") is not None  # class-conditional: (image, label) pairs

    def examples(split):
        return data.load(dataset, split, args.data_dir, with_labels=labelled)

    def build_model():
        return MODELS[model_class](image_shape=spec.image_shape, num_levels=spec.num_levels,
                                   **model_cfg)

    start = time.time()
    model, history = training.train(
        build_model,
        examples("train"), examples("validation"),
        num_train=data.num_examples(dataset, "train", args.data_dir),
        run_dir=run_dir, epochs=epochs, batch_size=batch_size, seed=args.seed,
        resume=args.resume, strategy=strategy, **train_cfg)
    test = training.evaluate(model, examples("test"), batch_size)
    wall = time.time() - start
    print(f"{name} ({args.preset}): test {test['nats']:.2f} nats/image, "
          f"{test['bits_per_dim']:.4f} bits/dim over {test['images']} images, {wall / 60:.1f} min")
    if not chief:
        return None  # the chief writes the record, figures and pretrained weights

    stem = f"{args.paper}-{args.preset}-{records.slug(dataset)}"
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
    if hasattr(model, "interpolate"):  # a latent path between the first two test images
        first = next(iter(examples("test").batch(2)))  # a conditional model: the first's label
        pair, label = (first[0].numpy(), {"label": int(first[1][0])}) if labelled else (first.numpy(), {})
        figures.interpolation(model.interpolate(pair[0], pair[1], num=8, **label), spec.num_levels,
                              os.path.join(args.out, "figures", f"{stem}-interpolation.png"),
                              title=f"{name} ({args.preset}): latent interpolation")
    record = {
        "paper": args.paper, "model": model_class, "dataset": dataset, "preset": args.preset,
        "split": "test", "test_images": test["images"], "test_nats": test["nats"],
        "test_bits_per_dim": test["bits_per_dim"],
        "published": paper.PUBLISHED.get(dataset),
        "parameters": int(sum(np.prod(v.shape) for v in model.trainable_weights)),
        "config": model.get_config(), "train": {**preset["train"], "epochs": epochs,
                                                "batch_size": batch_size, "seed": args.seed,
                                                "precision": args.precision},
        "epochs": len(history), "steps": len(history) * (
            data.num_examples(dataset, "train", args.data_dir) // batch_size),
        "wall_seconds": round(wall, 1), "hardware": records.hardware(),
        "git_commit": commit, "date": records.now(),
        "history": [{"epoch": int(r["epoch"]) + 1, "train_bits_per_dim": r["loss"],
                     "val_bits_per_dim": r.get("val_loss")} for r in history],
    }
    path = records.write_record(args.out, record)
    records.regenerate_table(args.out)
    print(f"wrote {path}")
    if args.publish:
        entry = hub.publish(name, model, record)
        print(f"published pretrained {entry['name']} (sha256 {entry['sha256'][:12]}...)")
    return record


if __name__ == "__main__":
    main()
