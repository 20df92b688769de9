"""`python -m reproduce bench [--suite steps|maf|quality|gpu] [--quick] [--out DIR]`: our models
against TFP's, side by side.

A suite is one process, one run. `steps` (the default): the machine's fp32 matmul peak;
the PixelCNN++ training step, ours vs `tfp.distributions.PixelCNN` at matched
hyper-parameters (28x28x1 and 32x32x3; ours also with XLA at 28x28x1); sampling 16
images, ours cached, ours naive and TFP's `sample()`; Glow's training step and sampling,
ours vs `tfp.bijectors.Glow` at matched levels, steps and width; the causal-conv ARM's
cached vs naive sampling; the fraction of the peak our training steps reach (the matmul
timed again in the same rounds as the steps, so both see the same load), also for the
PixelCNN++ and Glow `cpu` presets as they train (their batch and bfloat16 networks; a
bf16 matmul's peak alongside). `maf`: MAF and IAF training steps and MAF sampling
against TFP's `MaskedAutoregressiveFlow` (`reproduce/bench_maf.py`). `quality`: bits/dim
reached per second of training, PixelCNN++ and Glow `cpu` presets against TFP's, trained
in alternating slices in one process (`reproduce/bench_quality.py`). `gpu`: a check for a
GPU machine, with a report of its own (`reproduce/bench_gpu.py`).

A run writes its suite's sections into `DIR/benchmarks.json` (every measurement, each
suite with its own date, commit, machine, load and command), keeping the other suites'
sections there, and renders every suite present into `DIR/benchmarks.md` (the ratios
and targets; `reproduce/bench_report.py`).

Every training step, ours or TFP's, is the same `tf.function` (XLA as stated): a
GradientTape over the mean negative log-likelihood in bits/dim, then one Adam update
(Keras 3's Adam for ours, tf_keras' for TFP's Keras networks). Each measured callable is
called `warmup` times (the first call traces and compiles), then timed `repetitions`
times, the sides interleaved so load from other processes falls on both alike (XLA
steps in rounds of their own after the others: see `measure_steps`); the median counts.
Peak memory: TF's CPU allocator (`tf.config.experimental.get_memory_info("CPU:0")`), its
peak during a call above what was held before it.
"""

import math
import os
import platform
import statistics
import time

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from reproduce import arm, bench_report, glow, pixelcnnpp, records
from reproduce.threads import apply_thread_args, thread_flags
from reproduce.flops import TRAIN_FACTOR, forward_flops
from zoo.models import ARM, Glow, PixelCNNPlusPlus

MB = 2.0**20


def full_config():
    """The benchmark's sizes: the `cpu` presets' models (Glow in float32 with plain
    biased hidden convolutions and no preprocessing, as TFP's `GlowDefaultNetwork`; both
    unchained against TFP, whose one graph per batch has no `training_chains`)."""
    glow_model = {k: v for k, v in glow.PRESETS["cpu"]["model"].items()
                  if k not in ("mixed_precision", "eval_draws", "net_actnorm", "preprocess", "training_chains")}
    pixel_model = {k: v for k, v in pixelcnnpp.PRESETS["cpu"]["model"].items()
                   if k not in ("mixed_precision", "training_chains")}
    return {
        # 15 timed rounds: with 5, run-to-run noise moved the Glow step ratio by 10-15%.
        "warmup": 3, "repetitions": 15,
        "matmul": {"size": 2048, "repetitions": 10},
        "pixelcnnpp": {"model": dict(pixel_model, weight_norm=True),
                       "num_levels": 256, "batch": 16, "train_shapes": [[28, 28, 1], [32, 32, 3]],
                       "xla_shapes": [[28, 28, 1]],
                       # A naive loop runs the whole network 784 times a call: a sampler's
                       # timed calls stop once they took `sample_budget_s` (one at least).
                       "sample_shape": [28, 28, 1], "sample_images": 16, "sample_repetitions": 3,
                       "sample_budget_s": 60},
        "glow": {"model": glow_model, "num_levels": 256, "batch": 16, "image_shape": [28, 28, 1],
                 "sample_images": 16},
        "arm": {"model": dict(arm.PRESETS["cpu"]["model"]), "num_levels": 17, "image_shape": [8, 8, 1],
                "sample_images": 16},
        # The `cpu` presets' training steps on 8-bit MNIST as they train: model (with its
        # precision), batch.
        "presets": {name: {"model": {k: v for k, v in paper.PRESETS["cpu"]["model"].items() if k != "eval_draws"},
                           "batch": paper.PRESETS["cpu"]["train"]["batch_size"], "image_shape": [28, 28, 1],
                           "num_levels": 256}
                    for name, paper in (("pixelcnnpp", pixelcnnpp), ("glow", glow))},
    }


def quick_config():
    """Tiny shapes, one repetition (tests/test_bench.py): about a minute of CPU time,
    most of it tracing."""
    return {
        "warmup": 1, "repetitions": 1,
        "matmul": {"size": 128, "repetitions": 2},
        "pixelcnnpp": {"model": {"nr_resnet": 1, "nr_filters": 8, "nr_logistic_mix": 2, "num_scales": 2,
                                 "dropout": 0.0, "weight_norm": False},
                       "num_levels": 256, "batch": 2, "train_shapes": [[4, 4, 3]],
                       "xla_shapes": [], "sample_shape": [4, 4, 1], "sample_images": 2,
                       "sample_repetitions": 1, "sample_budget_s": 60},
        "glow": {"model": {"num_scales": 1, "depth": 1, "hidden_channels": 8, "coupling": "affine",
                           "permutation": "lu"},
                 "num_levels": 256, "batch": 2, "image_shape": [4, 4, 1], "sample_images": 2},
        "arm": {"model": {"filters": 8, "kernel_size": 3, "dilations": [1, 2], "residual": True},
                "num_levels": 17, "image_shape": [4, 4, 1], "sample_images": 2},
        "presets": {
            "pixelcnnpp": {"model": {"nr_resnet": 1, "nr_filters": 8, "nr_logistic_mix": 2, "num_scales": 2,
                                     "dropout": 0.0, "weight_norm": False, "mixed_precision": "bfloat16"},
                           "batch": 2, "image_shape": [4, 4, 1], "num_levels": 256},
            "glow": {"model": {"num_scales": 1, "depth": 1, "hidden_channels": 8, "mixed_precision": "bfloat16"},
                     "batch": 2, "image_shape": [4, 4, 1], "num_levels": 256},
        },
    }


# ---- timing ------------------------------------------------------------------------


def _block(out):
    """Waits for every tensor of `out` (a no-op for eager CPU results, kept for safety)."""
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)


def allocator_stats_available():
    """Whether TF's CPU allocator keeps statistics in this build and process (some
    builds keep none: then peak memory is reported as None, not measured)."""
    try:
        tf.config.experimental.get_memory_info("CPU:0")
        return True
    except ValueError:
        return False


def _call(fn):
    """(seconds, peak MB of TF's CPU allocator above what was held before, or None when
    the allocator keeps no statistics) of one call."""
    stats = allocator_stats_available()
    if stats:
        tf.config.experimental.reset_memory_stats("CPU:0")
        held = tf.config.experimental.get_memory_info("CPU:0")["current"]
    start = time.perf_counter()
    _block(fn())
    seconds = time.perf_counter() - start
    if not stats:
        return seconds, None
    return seconds, (tf.config.experimental.get_memory_info("CPU:0")["peak"] - held) / MB


def _max(a, b):
    return None if a is None or b is None else max(a, b)


def measure(tasks, warmup, repetitions):
    """Times named tasks side by side.

    `tasks`: name -> dict(run=callable, images=int, and optionally warm=callable (default:
    run) and budget_s=seconds). Each task's `warm` runs `warmup` times (the first call's
    seconds include tracing), then the tasks' `run`s take turns, `repetitions` rounds; a
    task whose timed calls took `budget_s` in all sits out the remaining rounds.
    Returns name -> {"first_call_seconds", "seconds", "median_seconds",
    "images_per_second", "peak_memory_mb", "images"}.
    """
    results = {}
    for name, task in tasks.items():
        warm = task.get("warm") or task["run"]
        first, peak = _call(warm)
        for _ in range(warmup - 1):
            peak = _max(peak, _call(warm)[1])
        results[name] = {"images": task["images"], "first_call_seconds": first, "seconds": [],
                         "warm_peak_memory_mb": peak, "peak_memory_mb": 0.0 if peak is not None else None}
        print(f"  {name}: first call {first:.1f} s", flush=True)
    for _ in range(repetitions):
        for name, task in tasks.items():
            if sum(results[name]["seconds"]) < task.get("budget_s", math.inf):
                seconds, peak = _call(task["run"])
                results[name]["seconds"].append(seconds)
                results[name]["peak_memory_mb"] = _max(results[name]["peak_memory_mb"], peak)
    for result in results.values():
        result["median_seconds"] = statistics.median(result["seconds"])
        result["images_per_second"] = result["images"] / result["median_seconds"]
    return results


def ratio(a, b):
    """How many times faster a is than b (images per second)."""
    return a["images_per_second"] / b["images_per_second"]


# ---- the machine -----------------------------------------------------------------


def machine():
    return {"cpu": records.cpu_model(), "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "tensorflow_probability": tfp.__version__, "tf_keras": tf_keras.__version__,
            "numpy": np.__version__, "load_average_1min_at_start": os.getloadavg()[0],
            # TF's thread pools (0: TF's default, all cores each)
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}


def matmul_task(size, dtype=tf.float32, copies=None):
    """A task for `measure`: `copies` independent n x n x n `tf.linalg.matmul`s in one call
    (default: one per usable core), fp32, or bf16 for the peak a 16-bit network can reach;
    its `flops` 2 n^3 per copy. Side by side, they fill the cores however TF's threads are
    set: one op over all cores, or one op per core (`--intra-op-threads 1`)."""
    copies = copies or len(os.sched_getaffinity(0))
    pairs = [tuple(tf.cast(tf.random.normal([size, size], seed=2 * i + s), dtype) for s in (1, 2))
             for i in range(copies)]
    mm = tf.function(lambda: [tf.linalg.matmul(a, b) for a, b in pairs])
    return {"run": mm, "images": 1, "flops": 2 * size**3 * copies, "copies": copies, "pairs": pairs}


def matmul_peak(cfg, task):
    """fp32 GFLOP/s of the matmul `task`, timed alone: median and best."""
    m = measure({"matmul": task}, 2, cfg["repetitions"])["matmul"]
    return {"size": cfg["size"], "copies": task["copies"], "flops": task["flops"], "seconds": m["seconds"],
            "gflops": task["flops"] / m["median_seconds"] / 1e9,
            "gflops_best": task["flops"] / min(m["seconds"]) / 1e9}


def measure_steps(tasks, matmul, warmup, repetitions):
    """`measure` of the training-step tasks with the matmul `task` timed in the same rounds:
    (measurements, the matmul's measurement with its median `gflops`, the reference
    the steps' fractions of the peak divide by).

    Tasks marked `xla=True` are timed after the others, in rounds of their own: right
    after an XLA call, XLA's CPU runtime slows the next TensorFlow call (our Glow `cpu`
    preset step took 0.29 s a call interleaved with a float32 step, 0.46 s interleaved
    with XLA steps, on idle cores)."""
    m = measure({**{k: t for k, t in tasks.items() if not t.get("xla")}, "matmul": matmul},
                warmup, repetitions)
    compiled = {k: t for k, t in tasks.items() if t.get("xla")}
    if compiled:
        m.update(measure(compiled, warmup, repetitions))
    return m, matmul_gflops(m.pop("matmul"), matmul)


def matmul_gflops(measured, task):
    """A matmul's measurement with its median `gflops` added."""
    return {**measured, "gflops": task["flops"] / measured["median_seconds"] / 1e9}


# ---- train steps ------------------------------------------------------------------


def train_step(loss_fn, variables, optimizer, jit_compile):
    """`images -> loss`: one GradientTape step and Adam update, a `tf.function`."""

    @tf.function(jit_compile=jit_compile)
    def step(images):
        with tf.GradientTape() as tape:
            loss = loss_fn(images)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss
    return step


def parameters(variables):
    return int(sum(np.prod(v.shape) for v in variables))


def random_images(shape, num_levels, batch, seed=0):
    return tf.constant(np.random.default_rng(seed).integers(0, num_levels, (batch, *shape)), tf.int32)


def ours_step(model, jit_compile):
    """Our model's step on its bits/dim (`call`, what `fit` minimizes)."""
    return train_step(lambda x: tf.reduce_mean(model(x, training=True)), model.trainable_variables,
                      keras.optimizers.Adam(1e-3), jit_compile)


def tfp_step(log_prob, variables, num_dims, jit_compile):
    """A TFP distribution's step on -mean log_prob / (D ln 2), tf_keras' Adam."""
    return train_step(lambda x: -tf.reduce_mean(log_prob(x)) / (num_dims * math.log(2.0)),
                      variables, tf_keras.optimizers.Adam(1e-3), jit_compile)


def tfp_pixelcnn(shape, num_levels, model):
    """`tfd.PixelCNN` with our PixelCNN++'s hyper-parameters (same names as TFP's docs)."""
    return tfp.distributions.PixelCNN(
        image_shape=tuple(shape), num_resnet=model["nr_resnet"], num_hierarchies=model["num_scales"],
        num_filters=model["nr_filters"], num_logistic_mix=model["nr_logistic_mix"],
        dropout_p=model["dropout"], use_weight_norm=model["weight_norm"], high=num_levels - 1, low=0)


def step_flops(forward, spec):
    """FLOPs of a training step: TRAIN_FACTOR forward passes of `forward` on `spec`."""
    return TRAIN_FACTOR * forward_flops(forward, spec)


def flops_records(flops, measured, peak_gflops):
    """Per measured step (name -> measurement), with `flops[name]` its FLOPs: GFLOP/s at
    its median time and their fraction of the matmul's `peak_gflops`."""
    out = {}
    for name, m in measured.items():
        gflops = flops[name] / m["median_seconds"] / 1e9
        out[name] = {"flops_per_step": flops[name], "gflops": gflops,
                     "fraction_of_matmul_peak": gflops / peak_gflops}
    return out


def pixelcnnpp_train(cfg, warmup, repetitions, matmul):
    rows = []
    for shape in cfg["train_shapes"]:
        levels, batch = cfg["num_levels"], cfg["batch"]
        ours = PixelCNNPlusPlus(shape, levels, **cfg["model"]).build_for_images()
        dist = tfp_pixelcnn(shape, levels, cfg["model"])
        images = random_images(shape, levels, batch)
        floats = tf.cast(images, tf.float32)
        num_dims = math.prod(shape)
        ours_flops = step_flops(lambda x: ours.log_prob(x, training=True), tf.TensorSpec(images.shape, tf.int32))
        flops = {"ours": ours_flops, "ours_xla": ours_flops,
                 "tfp": step_flops(lambda x: dist.log_prob(x, training=True),
                                   tf.TensorSpec(images.shape, tf.float32))}
        half = PixelCNNPlusPlus(shape, levels, **cfg["model"], mixed_precision="bfloat16").build_for_images()
        flops["ours_bf16"] = ours_flops  # the same convolutions, in 16 bits
        steps = {"ours": ours_step(ours, False), "ours_bf16": ours_step(half, False),
                 "tfp": tfp_step(lambda x: dist.log_prob(x, training=True), dist.network.trainable_variables,
                                 num_dims, False)}
        if shape in cfg["xla_shapes"]:
            steps["ours_xla"] = ours_step(ours, True)
        inputs = {"ours": images, "ours_xla": images, "ours_bf16": images, "tfp": floats}
        m, mm = measure_steps({k: {"run": (lambda s=s, x=inputs[k]: s(x)), "images": batch, "xla": k == "ours_xla"}
                               for k, s in steps.items()}, matmul, warmup, repetitions)
        row = {"image_shape": shape, "batch": batch, **m, "matmul": mm,
               "parameters": {"ours": parameters(ours.trainable_variables),
                              "tfp": parameters(dist.network.trainable_variables)},
               "ours_vs_tfp": ratio(m["ours"], m["tfp"]), "ours_bf16_vs_tfp": ratio(m["ours_bf16"], m["tfp"])}
        if "ours_xla" in m:
            row["xla_speedup"] = ratio(m["ours_xla"], m["ours"])
        row["flops"] = flops_records(flops, m, mm["gflops"])
        rows.append(row)
    return rows


def pixelcnnpp_sample(cfg):
    """16 images: ours cached, ours naive (same seed, same images) and TFP's `sample()`.
    Each warms up once on 1 image (its graph takes n as a tensor: no retracing)."""
    shape, n, levels = cfg["sample_shape"], cfg["sample_images"], cfg["num_levels"]
    ours = PixelCNNPlusPlus(shape, levels, **cfg["model"]).build_for_images()
    dist = tfp_pixelcnn(shape, levels, cfg["model"])
    tfp_sample = tf.function(lambda k: dist.sample(k, seed=0), input_signature=[tf.TensorSpec([], tf.int32)])

    def ours_task(method):
        return {"run": lambda: ours.sample(n, seed=0, method=method),
                "warm": lambda: ours.sample(1, seed=0, method=method), "images": n,
                "budget_s": cfg["sample_budget_s"]}

    m = measure({"ours_cached": ours_task("cached"), "ours_naive": ours_task("naive"),
                 "tfp": {"run": lambda: tfp_sample(n), "warm": lambda: tfp_sample(1), "images": n,
                         "budget_s": cfg["sample_budget_s"]}}, 1, cfg["sample_repetitions"])
    return {"image_shape": shape, "images": n, **m,
            "cached_vs_naive": ratio(m["ours_cached"], m["ours_naive"]),
            "cached_vs_tfp": ratio(m["ours_cached"], m["tfp"]),
            "naive_vs_tfp": ratio(m["ours_naive"], m["tfp"])}


def tfp_glow(shape, num_levels, model):
    """`tfb.Glow` (latent -> image) at our Glow's levels, steps and width over a standard
    normal: `log_prob(images)` of dequantized pixels scaled to [-1/2, 1/2) as ours."""
    tfb, tfd = tfp.bijectors, tfp.distributions
    if model.get("coupling", "affine") != "affine":
        raise ValueError(f"tfb.Glow's default network is affine; got coupling {model['coupling']!r}.")
    bijector = tfb.Glow(
        output_shape=tuple(shape), num_glow_blocks=model["num_scales"], num_steps_per_block=model["depth"],
        coupling_bijector_fn=lambda s: tfb.GlowDefaultNetwork(s, num_hidden=model["hidden_channels"]),
        exit_bijector_fn=tfb.GlowDefaultExitNetwork)
    base = tfd.Sample(tfd.Normal(0.0, 1.0), bijector.inverse_event_shape(tuple(shape)))
    dist = tfd.TransformedDistribution(base, bijector)
    num_dims = math.prod(shape)

    def log_prob(images):
        x = tf.cast(images, tf.float32)
        v = (x + tf.random.uniform(tf.shape(x))) / num_levels - 0.5
        return dist.log_prob(v) - num_dims * math.log(num_levels)
    return dist, bijector, log_prob


def glow_bench(cfg, warmup, repetitions, matmul):
    shape, levels, batch, n = cfg["image_shape"], cfg["num_levels"], cfg["batch"], cfg["sample_images"]
    ours = Glow(shape, levels, seed=0, **cfg["model"]).build_for_images()
    images = random_images(shape, levels, batch)
    ours.initialize(images)  # actnorm's data-dependent initialization (TFP's runs in its first step)
    dist, bijector, log_prob = tfp_glow(shape, levels, cfg["model"])
    num_dims = math.prod(shape)
    spec = tf.TensorSpec(images.shape, tf.int32)
    ours_flops = step_flops(lambda x: ours.log_prob(x, training=True), spec)
    half = Glow(shape, levels, seed=0, **{**cfg["model"], "mixed_precision": "bfloat16"}).build_for_images()
    half.initialize(images)
    # The bfloat16 network does the same convolutions in 16 bits (the flow stays float32).
    flops = {"ours": ours_flops, "ours_bf16": ours_flops, "ours_xla": ours_flops,
             "tfp": step_flops(log_prob, spec)}
    steps = {"ours": ours_step(ours, False), "ours_bf16": ours_step(half, False),
             "tfp": tfp_step(log_prob, bijector.trainable_variables, num_dims, False),
             "ours_xla": ours_step(ours, True)}
    train, mm = measure_steps({k: {"run": (lambda s=s: s(images)), "images": batch, "xla": k == "ours_xla"}
                               for k, s in steps.items()}, matmul, warmup, repetitions)
    tfp_sample = tf.function(lambda: dist.sample(n, seed=0))  # tfb.Reshape takes no int32 tensor n
    sample = measure({"ours": {"run": lambda: ours.sample(n, seed=0), "images": n},
                      "tfp": {"run": tfp_sample, "images": n}}, warmup, repetitions)
    return {"image_shape": shape, "batch": batch,
            "train": {**train, "ours_vs_tfp": ratio(train["ours"], train["tfp"]),
                      "ours_bf16_vs_tfp": ratio(train["ours_bf16"], train["tfp"]),
                      "xla_speedup": ratio(train["ours_xla"], train["ours"]),
                      "matmul": mm, "flops": flops_records(flops, train, mm["gflops"]),
                      "parameters": {"ours": parameters(ours.trainable_variables),
                                     "tfp": parameters(bijector.trainable_variables)}},
            "sample": {**sample, "images": n, "ours_vs_tfp": ratio(sample["ours"], sample["tfp"])}}


def preset_steps(cfg, warmup, repetitions, matmul, matmul16):
    """Our PixelCNN++ and Glow training steps as their `cpu` presets train on 8-bit MNIST
    (model, precision, batch), each with the fp32 and bf16 matmuls timed in its rounds."""
    out = {}
    for name, c in cfg.items():
        shape, levels, batch = c["image_shape"], c["num_levels"], c["batch"]
        model_class = PixelCNNPlusPlus if name == "pixelcnnpp" else Glow
        model = model_class(shape, levels, **c["model"]).build_for_images()
        images = random_images(shape, levels, batch)
        if name == "glow":
            model.initialize(images)
        flops = step_flops(lambda x: model.log_prob(x, training=True), tf.TensorSpec(images.shape, tf.int32))
        step = ours_step(model, False)
        m = measure({"ours": {"run": lambda: step(images), "images": batch}, "matmul": matmul,
                     "matmul_bf16": matmul16}, warmup, repetitions)
        mm, mm16 = matmul_gflops(m.pop("matmul"), matmul), matmul_gflops(m.pop("matmul_bf16"), matmul16)
        gflops = flops / m["ours"]["median_seconds"] / 1e9
        out[name] = {"image_shape": shape, "batch": batch, "precision": c["model"].get("mixed_precision") or
                     "float32", **m, "matmul": mm, "matmul_bf16": mm16, "flops_per_step": flops,
                     "gflops": gflops, "fraction_of_matmul_peak": gflops / mm["gflops"],
                     "fraction_of_bf16_matmul_peak": gflops / mm16["gflops"]}
    return out


def arm_sample(cfg, warmup, repetitions):
    shape, n = cfg["image_shape"], cfg["sample_images"]
    model = ARM(shape, cfg["num_levels"], **cfg["model"]).build_for_images()
    m = measure({method: {"run": (lambda method=method: model.sample(n, seed=0, method=method)), "images": n}
                 for method in ("cached", "naive")}, warmup, repetitions)
    return {"image_shape": shape, "images": n, **m, "cached_vs_naive": ratio(m["cached"], m["naive"])}


# ---- the run -----------------------------------------------------------------------

# The suites, each a set of sections with its own configs: `--suite NAME` runs one and
# keeps the others' sections already in `OUT/benchmarks.json`. The command line's
# choices (`reproduce/__main__.py`, BENCH_SUITES) name the same.
SUITES = ("steps", "maf", "quality", "gpu")
# Suites with reports of their own, not sections of `OUT/benchmarks.json`: gpu writes
# `OUT/gpu.md` and `OUT/gpu.json` (`reproduce/bench_gpu.py`).
OWN_REPORTS = ("gpu",)


def steps_sections(cfg):
    """The `steps` suite's sections in order: (name, thunk)."""
    warmup, reps = cfg["warmup"], cfg["repetitions"]
    matmul = matmul_task(cfg["matmul"]["size"])
    matmul16 = matmul_task(cfg["matmul"]["size"], tf.bfloat16)
    return [
        ("matmul_peak", lambda: matmul_peak(cfg["matmul"], matmul)),
        ("pixelcnnpp_train", lambda: pixelcnnpp_train(cfg["pixelcnnpp"], warmup, reps, matmul)),
        ("pixelcnnpp_sample", lambda: pixelcnnpp_sample(cfg["pixelcnnpp"])),
        ("glow", lambda: glow_bench(cfg["glow"], warmup, reps, matmul)),
        ("arm_sample", lambda: arm_sample(cfg["arm"], warmup, reps)),
        ("preset_steps", lambda: preset_steps(cfg["presets"], warmup, reps, matmul, matmul16)),
    ]


def suite_module(suite, data_dir=None):
    """(config(quick) -> config, config -> [(section, thunk)]) of a suite; `data_dir`:
    the TFDS data directory of a suite that reads a dataset (quality)."""
    if suite == "steps":
        return (lambda quick: quick_config() if quick else full_config()), steps_sections
    if suite == "maf":
        from reproduce import bench_maf
        return (lambda quick: bench_maf.quick_config() if quick else bench_maf.full_config()), bench_maf.sections
    if suite == "quality":
        from reproduce import bench_quality
        return ((lambda quick: bench_quality.quick_config() if quick else bench_quality.full_config()),
                lambda cfg: bench_quality.sections(cfg, data_dir))
    raise ValueError(f"suite must be one of {tuple(s for s in SUITES if s not in OWN_REPORTS)}, got {suite!r}.")


def run(quick=False, note="", suite="steps", data_dir=None):
    """Every section of `suite` in order; returns the suite's JSON-ready results, with
    their provenance (command, date, commit, machine and load, note, config)."""
    configure, sections = suite_module(suite, data_dir)
    cfg = configure(quick)
    start = time.time()
    command = " ".join(part for part in ("python -m reproduce bench", f"--suite {suite}",
                                         "--quick" if quick else "", thread_flags()) if part)
    results = {"suite": suite, "command": command, "quick": quick,
               "date": records.now(), "git_commit": records.git_commit(), "machine": machine(), "note": note,
               "config": cfg}
    for name, section in sections(cfg):
        t = time.time()
        results[name] = section()
        print(f"bench: {name} done in {time.time() - t:.0f} s", flush=True)
    results["machine"]["load_average_1min_at_end"] = os.getloadavg()[0]
    results["wall_seconds"] = time.time() - start
    results["targets"] = bench_report.targets(results)
    return results


def main(args):
    """`python -m reproduce bench`, its flags parsed by `reproduce.__main__` (`suite`, `quick`,
    `out`, `note` and the thread flags): runs the suite and writes its sections into the
    files under `out`, keeping the other suites' sections there."""
    if args.suite in OWN_REPORTS:
        from reproduce import bench_gpu  # before TF initializes a GPU: it carves logical ones
        return bench_gpu.main(args)
    apply_thread_args(args)
    keras.mixed_precision.set_global_policy("float32")
    results = run(quick=args.quick, note=args.note, suite=args.suite, data_dir=getattr(args, "data_dir", None))
    paths = bench_report.write(results, args.out)
    if args.suite == "quality":
        from reproduce import bench_quality
        paths.append(bench_quality.write_figure(results, args.out))
    print("wrote " + ", ".join(map(str, paths)))
    return results
