"""`python -m reproduce bench --suite gpu [--out DIR] [--data-dir DIR]`: a check for a
machine with a GPU, in a few minutes; writes `DIR/gpu.md` and `DIR/gpu.json`.

Where TensorFlow sees no GPU it prints one line and exits with status 0, writing nothing.

1. Two replicas on one GPU: `tf.config.set_logical_device_configuration` carves two
   logical GPUs out of the first (before TensorFlow initializes it); the `arm` `smoke`
   preset trains through `zoo.training.train` under a `MirroredStrategy` over both, and
   again on one device (`OneDeviceStrategy`), same seed and batches: the per-epoch
   training and validation losses must agree to a relative 1e-5. The two logical devices
   share one GPU, where NCCL cannot run: the strategy reduces through one device
   (`ReductionToOneDevice`); machines with several GPUs use TF's default (NCCL).
2. Each paper file's `paper` preset (those that have one) on its dataset's image size and
   the preset's global batch, float32 as the preset: the model and optimizer as
   `python -m reproduce PAPER --preset paper` builds them, `model.train_on_batch` on random
   images (the step `fit` runs, XLA as the preset's `jit_compile`, Keras' "auto" when
   unset), data-dependent initialization first. Two warm-up calls (the first traces and
   compiles), then timed calls until `REPETITIONS` or `TIMED_SECONDS`: images/s at the
   median, peak GPU memory during the timed calls
   (`tf.config.experimental.get_memory_info("GPU:0")["peak"]`, weights and optimizer state
   included), and the hours the preset's training length would take at that speed: epochs
   x (train-split images // batch) steps (`zoo.data.num_examples` where the dataset is
   prepared, else TFDS' published split sizes). A batch that does not fit is halved until
   it does (the row says so; the projection then uses the images/s at that batch).

Each check runs in a process of its own (`python -m reproduce.bench_gpu WORKER ...`): the
logical devices must be set before TensorFlow touches the GPU, and every preset starts
with the GPU's memory free; a check that fails or passes its time limit is reported as
such and the others still run.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SKIP_MESSAGE = ("python -m reproduce bench --suite gpu needs a GPU: TensorFlow sees none on this machine; "
                "skipped, nothing written.")
PAPER_FILES = ("arm", "pixelcnn", "realnvp", "pixelcnnpp", "glow", "maf")
REPETITIONS, TIMED_SECONDS, WARMUP = 10, 20.0, 2
MIRRORED_RTOL = 1e-5
LOGICAL_MEMORY_MB = 4096  # each of the two logical GPUs (the smoke ARM needs far less)
TOTAL_SECONDS = 540  # the whole suite: every worker's limit comes out of it
WORKER_SECONDS = {"mirrored": 120, "step": 150}
# TFDS' train split sizes, for the projection where a dataset is not prepared here.
TFDS_TRAIN = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000,
              "downsampled_imagenet/32x32": 1_281_149, "downsampled_imagenet/64x64": 1_281_149,
              "celeb_a": 162_770, "sklearn_digits": 1000}


def gpus():
    """The physical GPUs TensorFlow sees (listing them does not initialize them)."""
    import tensorflow as tf
    return tf.config.list_physical_devices("GPU")


# ---- the checks (each in its own process) ------------------------------------------


def mirrored_check(devices, one_device, data_dir=None, epochs=None):
    """The `arm` `smoke` preset trained under a `MirroredStrategy` over `devices` and on
    `one_device` alone: their per-epoch losses, the largest relative difference, ok."""
    import tensorflow as tf

    from reproduce import arm
    from zoo import data, training
    from zoo.models import MODELS

    preset = arm.PRESETS["smoke"]
    dataset = preset.get("dataset", arm.DATASET)
    spec = data.spec(dataset)
    train_cfg = dict(preset["train"])
    preset_epochs = train_cfg.pop("epochs")
    epochs = epochs or preset_epochs
    batch = train_cfg.pop("batch_size")

    def build():
        return MODELS[arm.MODEL](image_shape=spec.image_shape, num_levels=spec.num_levels, **preset["model"])

    strategies = {"one_device": tf.distribute.OneDeviceStrategy(one_device),
                  "mirrored": tf.distribute.MirroredStrategy(
                      devices, cross_device_ops=tf.distribute.ReductionToOneDevice())}
    histories = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, strategy in strategies.items():
            start = time.time()
            _, history = training.train(
                build, data.load(dataset, "train", data_dir), data.load(dataset, "validation", data_dir),
                num_train=data.num_examples(dataset, "train", data_dir), run_dir=os.path.join(tmp, name),
                epochs=epochs, batch_size=batch, seed=0, strategy=strategy, verbose=0, **train_cfg)
            histories[name] = {"loss": [float(r["loss"]) for r in history],
                               "val_loss": [float(r["val_loss"]) for r in history],
                               "seconds": time.time() - start,
                               "replicas": strategy.num_replicas_in_sync}
    diffs = [abs(a - b) / max(abs(b), 1e-12) for key in ("loss", "val_loss")
             for a, b in zip(histories["mirrored"][key], histories["one_device"][key])]
    return {"preset": "arm smoke", "dataset": dataset, "epochs": epochs, "batch": batch,
            "devices": list(devices), "one_device": one_device, **histories,
            "max_relative_difference": max(diffs), "rtol": MIRRORED_RTOL,
            "ok": bool(len(diffs) == 2 * epochs and max(diffs) <= MIRRORED_RTOL)}


def train_split_size(dataset, data_dir=None):
    """(images in the train split, where the number came from)."""
    from zoo import data
    try:
        return data.num_examples(dataset, "train", data_dir), "zoo.data.num_examples"
    except (FileNotFoundError, OSError, ValueError, AssertionError):
        pass
    spec = data.spec(dataset)
    split = spec.splits["train"]
    total = TFDS_TRAIN[spec.tfds_name]
    if "[:" in split and split.endswith("%]"):  # e.g. train[:90%]: a held-out validation cut
        return round(total * int(split[split.index("[:") + 2:-2]) / 100), f"TFDS' {split} of {total:,}"
    return total, f"TFDS' {split}"


def _memory(device):
    import tensorflow as tf
    try:
        return tf.config.experimental.get_memory_info(device)
    except ValueError:  # an allocator that keeps no statistics
        return None


def paper_step(name, preset_name="paper", device="GPU:0", data_dir=None, batch=None, repetitions=REPETITIONS,
               timed_seconds=TIMED_SECONDS):
    """One paper file's preset: its training step on random images (see the module's
    docstring); a dict, or `{"skipped": why}` for a paper file without the preset."""
    import importlib

    import numpy as np
    import tensorflow as tf

    from reproduce.__main__ import resolve_preset
    from zoo import data
    from zoo.models import MODELS
    from zoo.training import make_optimizer

    paper = importlib.import_module(f"reproduce.{name}")
    if preset_name not in paper.PRESETS:
        return {"skipped": f"{name} has no {preset_name!r} preset"}
    dataset = paper.PRESETS[preset_name].get("dataset", paper.DATASET)
    cfg = resolve_preset(paper, preset_name, dataset)
    model_cfg, train_cfg = dict(cfg["model"]), dict(cfg["train"])
    model_class = model_cfg.pop("class", paper.MODEL)
    spec = data.spec(dataset)
    paper_batch = train_cfg["batch_size"]
    batch = batch or paper_batch
    jit = train_cfg.get("jit_compile", "auto")
    rng = np.random.default_rng(0)
    record = {"paper": name, "preset": preset_name, "dataset": dataset, "model": model_class,
              "image_shape": list(spec.image_shape), "num_levels": spec.num_levels, "paper_batch": paper_batch,
              "epochs": train_cfg.get("epochs"), "patience": train_cfg.get("patience"), "attempts": []}
    with tf.device(device):
        model = MODELS[model_class](image_shape=spec.image_shape, num_levels=spec.num_levels, **model_cfg)
        model.build_for_images()
        model.compile(optimizer=make_optimizer(**train_cfg.get("optimizer", {})), jit_compile=jit)
        record["jit_compile"] = bool(model.jit_compile)
        record["parameters"] = int(sum(np.prod(v.shape) for v in model.trainable_weights))
        initialized = False
        while batch >= 1:
            images = tf.constant(rng.integers(0, spec.num_levels, (batch, *spec.image_shape)), tf.int32)
            try:
                if not initialized:
                    model.initialize(images)  # weight norm / actnorm from a batch, as `zoo.training.train`
                    initialized = True
                start = time.perf_counter()
                model.train_on_batch(images)
                first = time.perf_counter() - start
                for _ in range(WARMUP - 1):
                    model.train_on_batch(images)
                before = _memory(device)
                if before is not None:
                    tf.config.experimental.reset_memory_stats(device)
                    before = _memory(device)
                seconds = []
                while len(seconds) < repetitions and sum(seconds) < timed_seconds:
                    start = time.perf_counter()
                    loss = model.train_on_batch(images)
                    seconds.append(time.perf_counter() - start)
                after = _memory(device)
            except tf.errors.ResourceExhaustedError as e:
                record["attempts"].append({"batch": batch, "error": "out of memory", "detail": str(e)[:300]})
                batch //= 2
                continue
            median = statistics.median(seconds)
            record.update({
                "batch": batch, "first_call_seconds": first, "seconds": seconds, "median_seconds": median,
                "images_per_second": batch / median, "loss": float(np.asarray(loss).reshape(-1)[0]),
                "memory_before_gb": None if before is None else before["current"] / 2**30,
                "peak_memory_gb": None if after is None else after["peak"] / 2**30})
            break
        else:
            record["error"] = "out of memory down to a batch of 1"
            return record
    num_train, source = train_split_size(dataset, data_dir)
    steps = num_train // paper_batch
    record.update({"train_images": num_train, "train_images_source": source, "steps_per_epoch": steps})
    if record.get("epochs"):
        record["projected_hours"] = record["epochs"] * steps * paper_batch / record["images_per_second"] / 3600
    return record


def _worker(argv):
    """`python -m reproduce.bench_gpu mirrored JSON [DATA_DIR]` or `... step PAPER JSON
    [DATA_DIR]`: one check in this process, its result written to JSON."""
    import tensorflow as tf

    kind = argv[0]
    physical = tf.config.list_physical_devices("GPU")
    if kind == "mirrored":
        path, data_dir = argv[1], (argv[2] if len(argv) > 2 else None)
        config = tf.config.LogicalDeviceConfiguration(memory_limit=LOGICAL_MEMORY_MB)
        tf.config.set_logical_device_configuration(physical[0], [config, config])
        details = tf.config.experimental.get_device_details(physical[0])
        result = mirrored_check(["/gpu:0", "/gpu:1"], "/gpu:0", data_dir)
        result["gpu"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in details.items()}
        result["logical_memory_mb"] = LOGICAL_MEMORY_MB
    elif kind == "step":
        name, path, data_dir = argv[1], argv[2], (argv[3] if len(argv) > 3 else None)
        for gpu in physical:
            tf.config.experimental.set_memory_growth(gpu, True)
        result = paper_step(name, data_dir=data_dir)
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    Path(path).write_text(json.dumps(result, indent=2))


def run_worker(args, limit):
    """Runs one worker process: its result, or {"error": ...} when it failed or ran out of time."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "result.json")
        kind, rest = args[0], args[1:]
        command = [sys.executable, "-m", "reproduce.bench_gpu", kind, *rest[:1], path, *rest[1:]]
        start = time.time()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=max(1, limit))
        except subprocess.TimeoutExpired:
            return {"error": f"did not finish within its {limit:.0f} s", "wall_seconds": time.time() - start}
        if done.returncode != 0 or not os.path.exists(path):
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
            return {"error": f"exit status {done.returncode}", "detail": tail, "wall_seconds": time.time() - start}
        result = json.loads(Path(path).read_text())
        result["wall_seconds"] = time.time() - start
        return result


# ---- the suite ---------------------------------------------------------------------


def main(args):
    """`python -m reproduce bench --suite gpu`: the checks, `OUT/gpu.md` and `OUT/gpu.json`;
    one line and nothing written where TensorFlow sees no GPU."""
    found = gpus()
    if not found:
        print(SKIP_MESSAGE, flush=True)
        return None
    from reproduce import records
    from zoo.files import write_json, write_text

    data_dir = getattr(args, "data_dir", None)
    extra = [data_dir] if data_dir else []
    start = time.time()

    def left(cap):
        return min(cap, TOTAL_SECONDS - (time.time() - start))

    print(f"bench gpu: {len(found)} GPU(s); two logical GPUs on the first against one device", flush=True)
    mirrored = run_worker(["mirrored", *extra], left(WORKER_SECONDS["mirrored"]))
    steps = {}
    for name in PAPER_FILES:
        limit = left(WORKER_SECONDS["step"])
        if limit < 20:
            steps[name] = {"error": "not run: the suite's time was spent"}
            continue
        print(f"bench gpu: {name}'s paper preset step", flush=True)
        steps[name] = run_worker(["step", name, *extra], limit)
    results = {"suite": "gpu", "command": "python -m reproduce bench --suite gpu", "date": records.now(),
               "git_commit": records.git_commit(), "note": getattr(args, "note", ""),
               "gpus": len(found), "mirrored": mirrored, "paper_steps": steps,
               "wall_seconds": time.time() - start}
    out = Path(args.out)
    paths = [write_json(out / "gpu.json", results), write_text(out / "gpu.md", markdown(results))]
    print("wrote " + ", ".join(map(str, paths)), flush=True)
    return results


def _num(x, fmt):
    return "-" if x is None else format(x, fmt)


def markdown(r):
    m = r["mirrored"]
    gpu = m.get("gpu", {}).get("device_name", "a GPU") if "error" not in m else "a GPU"
    lines = ["# GPU check", "",
             f"Generated by `{r['command']}` on {r['date']}, commit {r['git_commit']}, in "
             f"{r['wall_seconds'] / 60:.1f} min, on {r['gpus']} GPU(s) ({gpu}); do not edit by hand.", ""]
    if r.get("note"):
        lines += [f"**Conditions:** {r['note']}", ""]
    lines += ["## Two replicas on one GPU against one device", ""]
    if "error" in m:
        lines += [f"Failed: {m['error']}.", "", "```", m.get("detail", ""), "```", ""]
    else:
        lines += [
            f"The `arm` `smoke` preset ({m['dataset']}, {m['epochs']} epochs, global batch {m['batch']}) through "
            f"`zoo.training.train`: a `MirroredStrategy` over two logical GPUs carved from the first "
            f"({m['logical_memory_mb']} MB each; reduced through one device, as NCCL needs distinct GPUs) "
            f"against `OneDeviceStrategy` on one. Needed: every epoch's loss and validation loss within a "
            f"relative {m['rtol']:g}.",
            "",
            "| epoch | loss, one device | loss, 2 replicas | val loss, one device | val loss, 2 replicas |",
            "|---|---|---|---|---|",
        ]
        one, two = m["one_device"], m["mirrored"]
        for e in range(len(one["loss"])):
            lines.append(f"| {e + 1} | {one['loss'][e]:.7f} | {two['loss'][e]:.7f} | {one['val_loss'][e]:.7f} | "
                         f"{two['val_loss'][e]:.7f} |")
        lines += ["", f"Largest relative difference: {m['max_relative_difference']:.2e}: "
                      f"**{'ok' if m['ok'] else 'FAILED'}**.", ""]
    lines += [
        "## The paper presets' training steps",
        "",
        f"Each paper file's `paper` preset at its dataset's image size and the preset's global batch on one "
        f"GPU, float32: `model.train_on_batch` on random images after data-dependent initialization, "
        f"{WARMUP} warm-up calls, then up to {REPETITIONS} timed calls ({TIMED_SECONDS:g} s at most); "
        f"the median counts. Peak memory: TF's GPU allocator during the timed calls (weights and optimizer "
        f"state included). Projected hours: the preset's epochs x (train-split images // batch) steps at "
        f"this speed; for presets with early stopping (patience) the epochs are a ceiling.",
        "",
        "| paper | model | dataset, image | batch | XLA | parameters | img/s | median step s | first call s "
        "| peak GB | epochs x steps | projected hours |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for name, s in r["paper_steps"].items():
        if "skipped" in s:
            notes.append(f"{name}: {s['skipped']}.")
            continue
        if "error" in s and "images_per_second" not in s:
            notes.append(f"{name}: {s['error']}." + (f" {s['detail'].splitlines()[-1]}" if s.get("detail") else ""))
            continue
        batch = str(s["batch"]) if s["batch"] == s["paper_batch"] else \
            f"{s['batch']} (paper's {s['paper_batch']} did not fit)"
        epochs = f"{s['epochs']} x {s['steps_per_epoch']:,}" + (f" (patience {s['patience']})" if s.get("patience")
                                                                else "")
        lines.append(
            f"| {name} | {s['model']} | {s['dataset']}, {'x'.join(map(str, s['image_shape']))} | {batch} | "
            f"{'on' if s['jit_compile'] else 'off'} | {s['parameters']:,} | {s['images_per_second']:.1f} | "
            f"{s['median_seconds']:.3f} | {s['first_call_seconds']:.0f} | {_num(s.get('peak_memory_gb'), '.2f')} | "
            f"{epochs} | {_num(s.get('projected_hours'), '.1f')} |")
        if s["train_images_source"] != "zoo.data.num_examples":
            notes.append(f"{name}: {s['train_images']:,} training images from {s['train_images_source']} "
                         f"(the dataset is not prepared here).")
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    _worker(sys.argv[1:])
