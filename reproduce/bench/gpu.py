"""`python -m reproduce bench --suite gpu [--out DIR] [--data-dir DIR]`: a few minutes' check of a GPU machine: two
replicas on one GPU against one device (the `arm` `smoke` run), and each paper's `paper` preset's training step, into
`DIR/gpu.md` and `DIR/gpu.json` (`templates/gpu.md`); one line and nothing written where TensorFlow sees no GPU.

Each check runs in a process of its own (`python -m reproduce.bench.gpu KIND JSON [DATA_DIR] [PAPER]`): logical
devices are set before TensorFlow touches the GPU, and each preset starts with the GPU's memory free.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reproduce.bench import report
from reproduce.runs import PAPERS, Run

SKIP_MESSAGE = ("python -m reproduce bench --suite gpu needs a GPU: TensorFlow sees none on this machine; "
                "skipped, nothing written.")
REPETITIONS, TIMED_SECONDS, WARMUP = 10, 20.0, 2
MIRRORED_RTOL = 1e-5
LOGICAL_MEMORY_MB = 4096  # each of the two logical GPUs (the smoke ARM needs far less)
TOTAL_SECONDS = 540  # the whole suite: every worker's limit comes out of it
WORKER_SECONDS = {"mirrored": 120, "step": 150}


def gpus():
    """The physical GPUs TensorFlow sees (listing them does not initialize them)."""
    import tensorflow as tf
    return tf.config.list_physical_devices("GPU")


def mirrored_check(devices, one_device, data_dir=None):
    """The `arm` `smoke` run under a `MirroredStrategy` over `devices` (reduced through one device: NCCL needs
    distinct GPUs) and on `one_device`, same seed and batches: per-epoch losses within a relative `MIRRORED_RTOL`."""
    import tensorflow as tf

    from zoo import data, training

    run = Run("arm", "smoke")
    train_cfg = run.train_config
    epochs, batch = train_cfg.pop("epochs"), train_cfg.pop("batch_size")
    mirrored = tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    strategies = {"one_device": tf.distribute.OneDeviceStrategy(one_device), "mirrored": mirrored}
    out = {"preset": "arm smoke", "dataset": run.dataset, "epochs": epochs, "batch": batch, "devices": list(devices),
           "one_device": one_device, "rtol": MIRRORED_RTOL}
    with tempfile.TemporaryDirectory() as tmp:
        for name, strategy in strategies.items():
            start = time.time()
            _, history = training.train(
                run.build_model, run.examples("train", data_dir), run.examples("validation", data_dir),
                num_train=data.num_examples(run.dataset, "train", data_dir), run_dir=os.path.join(tmp, name),
                epochs=epochs, batch_size=batch, seed=0, strategy=strategy, verbose=0, **train_cfg)
            out[name] = {key: [float(r[key]) for r in history] for key in ("loss", "val_loss")}
            out[name].update(seconds=time.time() - start, replicas=strategy.num_replicas_in_sync)
    diffs = [abs(a - b) / max(abs(b), 1e-12) for key in ("loss", "val_loss")
             for a, b in zip(out["mirrored"][key], out["one_device"][key])]
    return {**out, "max_relative_difference": max(diffs),
            "ok": bool(len(diffs) == 2 * epochs and max(diffs) <= MIRRORED_RTOL)}


def _timed(model, images, device):
    """`train_on_batch`: WARMUP calls (the first traces), then up to REPETITIONS or TIMED_SECONDS timed on `device`."""
    import numpy as np
    import tensorflow as tf

    from reproduce.bench.measure import memory_info

    start = time.perf_counter()
    model.train_on_batch(images)
    first = time.perf_counter() - start
    for _ in range(WARMUP - 1):
        model.train_on_batch(images)
    if memory_info(device) is not None:
        tf.config.experimental.reset_memory_stats(device)
    before, seconds = memory_info(device), []
    while len(seconds) < REPETITIONS and sum(seconds) < TIMED_SECONDS:
        start = time.perf_counter()
        loss = model.train_on_batch(images)
        seconds.append(time.perf_counter() - start)
    after = memory_info(device)
    return {"first_call_seconds": first, "seconds": seconds, "median_seconds": statistics.median(seconds),
            "loss": float(np.asarray(loss).reshape(-1)[0]),
            "memory_before_gb": None if before is None else before["current"] / 2**30,
            "peak_memory_gb": None if after is None else after["peak"] / 2**30}


def paper_step(name, device="GPU:0", data_dir=None):
    """A paper's `paper` preset's step on random images at its global batch (halved until it fits), initialized as
    `zoo.training.train` does, XLA as the preset says; `{"skipped": why}` for a paper without that preset."""
    import numpy as np
    import tensorflow as tf

    from zoo import data
    from zoo.training import count_parameters, make_optimizer

    try:
        run = Run(name, "paper")
    except ValueError as e:
        return {"skipped": str(e)}
    train_cfg, spec = run.train_config, data.spec(run.dataset)
    batch = paper_batch = train_cfg["batch_size"]
    record = {"paper": name, "preset": "paper", "dataset": run.dataset, "model": run.model_class,
              "image_shape": list(spec.image_shape), "num_levels": spec.num_levels, "paper_batch": paper_batch,
              "epochs": train_cfg.get("epochs"), "patience": train_cfg.get("patience"), "attempts": []}
    rng, initialized = np.random.default_rng(0), False
    with tf.device(device):
        model = run.build_model().build_for_images()
        model.compile(optimizer=make_optimizer(**train_cfg.get("optimizer", {})),
                      jit_compile=train_cfg.get("jit_compile", "auto"))
        record.update(jit_compile=bool(model.jit_compile), parameters=count_parameters(model))
        while "images_per_second" not in record:
            if batch < 1:
                return {**record, "error": "out of memory down to a batch of 1"}
            images = tf.constant(rng.integers(0, spec.num_levels, (batch, *spec.image_shape)), tf.int32)
            try:
                if not initialized:  # weight norm, actnorm: from a batch, as `zoo.training.train`
                    model.initialize(images)
                    initialized = True
                timed = _timed(model, images, device)
                record.update(batch=batch, **timed, images_per_second=batch / timed["median_seconds"])
            except tf.errors.ResourceExhaustedError as e:
                record["attempts"].append({"batch": batch, "error": "out of memory", "detail": str(e)[:300]})
                batch //= 2
    try:
        num_train = data.num_examples(run.dataset, "train", data_dir)
    except (FileNotFoundError, OSError, ValueError, AssertionError):  # not prepared here: no projection
        return record
    steps = num_train // paper_batch
    record.update(train_images=num_train, steps_per_epoch=steps)
    if record["epochs"]:
        record["projected_hours"] = record["epochs"] * steps * paper_batch / record["images_per_second"] / 3600
    return record


def _worker(kind, path, data_dir=None, paper=None):
    """One check in this process, its result written as JSON to `path`."""
    import tensorflow as tf

    physical = tf.config.list_physical_devices("GPU")
    if kind == "mirrored":
        config = tf.config.LogicalDeviceConfiguration(memory_limit=LOGICAL_MEMORY_MB)
        tf.config.set_logical_device_configuration(physical[0], [config, config])
        details = tf.config.experimental.get_device_details(physical[0])
        result = {**mirrored_check(["/gpu:0", "/gpu:1"], "/gpu:0", data_dir), "logical_memory_mb": LOGICAL_MEMORY_MB,
                  "gpu": {k: (list(v) if isinstance(v, tuple) else v) for k, v in details.items()}}
    else:
        for gpu in physical:
            tf.config.experimental.set_memory_growth(gpu, True)
        result = paper_step(paper, data_dir=data_dir)
    Path(path).write_text(json.dumps(result, indent=2))


def run_worker(kind, limit, data_dir=None, paper=None):
    """One worker process: its result, or {"error": ...} when it failed or ran out of time."""
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "result.json")
        try:
            done = subprocess.run([sys.executable, "-m", "reproduce.bench.gpu", kind, path, data_dir or "",
                                   paper or ""], capture_output=True, text=True, timeout=max(1, limit))
        except subprocess.TimeoutExpired:
            return {"error": f"did not finish within its {limit:.0f} s", "wall_seconds": time.time() - start}
        if done.returncode != 0 or not os.path.exists(path):
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
            return {"error": f"exit status {done.returncode}", "detail": tail, "wall_seconds": time.time() - start}
        return {**json.loads(Path(path).read_text()), "wall_seconds": time.time() - start}


def main(args):
    """The checks, `OUT/gpu.json` and `OUT/gpu.md`; one line and nothing written where TensorFlow sees no GPU."""
    found = gpus()
    if not found:
        print(SKIP_MESSAGE, flush=True)
        return None
    from reproduce import records
    from zoo.files import write_json, write_text

    start = time.time()

    def left(cap):
        return min(cap, TOTAL_SECONDS - (time.time() - start))

    print(f"bench gpu: {len(found)} GPU(s); two logical GPUs on the first against one device", flush=True)
    mirrored, steps = run_worker("mirrored", left(WORKER_SECONDS["mirrored"]), args.data_dir), {}
    for name in PAPERS:
        print(f"bench gpu: {name}'s paper preset step", flush=True)
        steps[name] = (run_worker("step", left(WORKER_SECONDS["step"]), args.data_dir, name)
                       if left(WORKER_SECONDS["step"]) >= 20 else {"error": "not run: the suite's time was spent"})
    results = {"suite": "gpu", "command": "python -m reproduce bench --suite gpu", "date": records.now(),
               "git_commit": records.git_commit(), "note": args.note, "gpus": len(found), "mirrored": mirrored,
               "paper_steps": steps, "wall_seconds": time.time() - start}
    paths = [write_json(Path(args.out) / "gpu.json", results), write_text(Path(args.out) / "gpu.md", markdown(results))]
    print("wrote " + ", ".join(map(str, paths)), flush=True)
    return results


def markdown(r):
    """`gpu.md` of a GPU check's results."""
    m, steps, notes = r["mirrored"], r["paper_steps"], []
    for name, s in steps.items():
        if "images_per_second" not in s:
            detail = f" {s['detail'].splitlines()[-1]}" if s.get("detail") else ""
            notes.append(f"{name}: {s.get('skipped') or s['error']}.{detail}")
        elif "steps_per_epoch" not in s:
            notes.append(f"{name}: no projection, the dataset is not prepared here (pass --data-dir).")
    one, two = m.get("one_device", {}), m.get("mirrored", {})
    epochs = [{"epoch": e + 1, "one_loss": one["loss"][e], "two_loss": two["loss"][e],
               "one_val": one["val_loss"][e], "two_val": two["val_loss"][e]} for e in range(len(one.get("loss", [])))]
    return "\n".join(report.render("gpu", r=r, m=m, epochs=epochs, notes=notes, warmup=WARMUP, repetitions=REPETITIONS,
                                   steps=[s for s in steps.values() if "images_per_second" in s],
                                   timed_seconds=TIMED_SECONDS, gpu_name=m.get("gpu", {}).get("device_name", "a GPU")))


if __name__ == "__main__":
    _worker(*(arg or None for arg in sys.argv[1:]))
