"""How every suite measures: tasks timed side by side, training steps, the matmul peak, the machine; TFP's
counterparts of our models. Tasks take turns for the timed rounds, so load from other processes falls on all alike.
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

from reproduce import records
from reproduce.bench.flops import TRAIN_FACTOR, forward_flops
from zoo.models import Glow, PixelCNNPlusPlus

OURS = {"pixelcnnpp": PixelCNNPlusPlus, "glow": Glow}  # the models the steps and quality suites set against TFP's


def memory_info(device="CPU:0"):
    """TF's allocator statistics on `device` ({"current", "peak"} bytes), or None where it keeps none."""
    try:
        return tf.config.experimental.get_memory_info(device)
    except ValueError:
        return None


def _call(fn):
    """(seconds, peak MB above what was held before, or None) of one call of `fn`."""
    before = memory_info()
    if before is not None:
        tf.config.experimental.reset_memory_stats("CPU:0")
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, fn())
    seconds = time.perf_counter() - start
    return seconds, None if before is None else (memory_info()["peak"] - before["current"]) / 2**20


def _max(a, b):
    return None if a is None or b is None else max(a, b)


def measure(tasks, warmup, repetitions):
    """Times `tasks` (name -> {"run", "images", optionally "warm", "budget_s" for its timed calls, "flops"}) side by
    side, `warmup` calls each (the first traces), then `repetitions` rounds: name -> seconds, memory, median, img/s."""
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
    for name, result in results.items():
        result["median_seconds"] = statistics.median(result["seconds"])
        result["images_per_second"] = result["images"] / result["median_seconds"]
        if "flops" in tasks[name]:  # a matmul: its median GFLOP/s
            result["gflops"] = gflops(tasks[name]["flops"], result)
    return results


def ratios(m, **pairs):
    """`{key: how many times faster m[a] is than m[b]}` (images per second) for each `key=(a, b)`."""
    return {key: m[a]["images_per_second"] / m[b]["images_per_second"] for key, (a, b) in pairs.items()}


def gflops(flops, measured):
    """GFLOP/s of `flops` a call at a measurement's median."""
    return flops / measured["median_seconds"] / 1e9


def machine():
    """The machine, the library versions, the load and TF's threads, JSON-ready."""
    return {"cpu": records.cpu_model(), "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "tensorflow_probability": tfp.__version__, "tf_keras": tf_keras.__version__,
            "numpy": np.__version__, "load_average_1min_at_start": os.getloadavg()[0],
            # TF's thread pools (0: TF's default, all cores each)
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}


def matmul_task(size, dtype=tf.float32, copies=None):
    """`copies` (default: a usable core's) independent n x n matmuls a call, to fill the cores whatever TF's threads."""
    copies = copies or len(os.sched_getaffinity(0))
    pairs = [tuple(tf.cast(tf.random.normal([size, size], seed=2 * i + s), dtype) for s in (1, 2))
             for i in range(copies)]
    mm = tf.function(lambda: [tf.linalg.matmul(a, b) for a, b in pairs])
    return {"run": mm, "images": 1, "size": size, "flops": 2 * size**3 * copies, "copies": copies, "pairs": pairs}


def measure_steps(tasks, matmul, warmup, repetitions):
    """(steps' measurements, the matmul's) timed in the same rounds; `xla` steps after, in rounds of their own (right
    after an XLA call, the next TF call is slower)."""
    m = measure({**{k: t for k, t in tasks.items() if not t.get("xla")}, "matmul": matmul}, warmup, repetitions)
    m.update(measure({k: t for k, t in tasks.items() if t.get("xla")}, warmup, repetitions))
    return m, m.pop("matmul")


def step_tasks(steps, images):
    """Tasks of training steps `name -> (step, inputs)`, `images` a call; a name ending in "xla" marks an XLA step."""
    return {name: {"run": lambda s=s, x=x: s(x), "images": images, "xla": name.endswith("xla")}
            for name, (s, x) in steps.items()}


def compare_samplers(ours, dist, cfg, shape):
    """Our `sample(n, method=...)`, cached and naive, against TFP's `dist.sample(n)` in a `tf.function`, with ratios."""
    n, budget = cfg["sample_images"], cfg["sample_budget_s"]
    tfp_sample = tf.function(lambda k: dist.sample(k, seed=0), input_signature=[tf.TensorSpec([], tf.int32)])
    samplers = {"ours_cached": lambda k: ours.sample(k, seed=0, method="cached"),
                "ours_naive": lambda k: ours.sample(k, seed=0, method="naive"), "tfp": tfp_sample}
    # each warmed up on one image (n a tensor: no retracing), timed on n until the budget
    m = measure({name: {"run": lambda s=s: s(n), "warm": lambda s=s: s(1), "images": n, "budget_s": budget}
                 for name, s in samplers.items()}, 1, cfg["sample_repetitions"])
    return {"image_shape": shape, "images": n, **m,
            **ratios(m, cached_vs_naive=("ours_cached", "ours_naive"), cached_vs_tfp=("ours_cached", "tfp"),
                     naive_vs_tfp=("ours_naive", "tfp"))}


def tfp_counterpart(name, shape, levels, model):
    """TFP's `tfd.PixelCNN` or `tfb.Glow` at our `name`'s hyper-parameters: (dist, log_prob, variables, input dtype).
    Glow: over a standard normal, scoring images dequantized and scaled to [-1/2, 1/2)."""
    tfb, tfd = tfp.bijectors, tfp.distributions
    if name == "pixelcnnpp":
        dist = tfd.PixelCNN(
            image_shape=tuple(shape), num_resnet=model["nr_resnet"], num_hierarchies=model["num_scales"],
            num_filters=model["filters"], num_logistic_mix=model["nr_logistic_mix"],
            dropout_p=model["dropout"], use_weight_norm=model["weight_norm"], high=levels - 1, low=0)
        return dist, lambda x: dist.log_prob(x, training=True), dist.network.trainable_variables, tf.float32
    if model.get("coupling", "affine") != "affine":
        raise ValueError(f"tfb.Glow's default network is affine; got coupling {model['coupling']!r}.")
    bijector = tfb.Glow(
        output_shape=tuple(shape), num_glow_blocks=model["num_scales"], num_steps_per_block=model["depth"],
        coupling_bijector_fn=lambda s: tfb.GlowDefaultNetwork(s, num_hidden=model["filters"]),
        exit_bijector_fn=tfb.GlowDefaultExitNetwork)
    dist = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(0.0, 1.0), bijector.inverse_event_shape(tuple(shape))), bijector)
    num_dims = math.prod(shape)

    def log_prob(images):
        x = tf.cast(images, tf.float32)
        return dist.log_prob((x + tf.random.uniform(tf.shape(x))) / levels - 0.5) - num_dims * math.log(levels)
    return dist, log_prob, bijector.trainable_variables, tf.int32


def train_step(loss_fn, variables, optimizer, jit_compile=False):
    """`inputs -> loss`: one GradientTape step and optimizer update, a `tf.function`."""

    @tf.function(jit_compile=jit_compile)
    def step(inputs):
        with tf.GradientTape() as tape:
            loss = loss_fn(inputs)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss
    return step


def ours_step(model, jit_compile=False):
    """Our model's step on its bits/dim (`call`, what `fit` minimizes), Keras 3's Adam."""
    return train_step(lambda x: tf.reduce_mean(model(x, training=True)), model.trainable_variables,
                      keras.optimizers.Adam(1e-3), jit_compile)


def tfp_step(log_prob, variables, num_dims):
    """A TFP distribution's step on -mean log_prob / (D ln 2), tf_keras' Adam."""
    return train_step(lambda x: -tf.reduce_mean(log_prob(x)) / (num_dims * math.log(2.0)),
                      variables, tf_keras.optimizers.Adam(1e-3))


def step_flops(log_prob, images):
    """FLOPs of a training step on `images`: TRAIN_FACTOR forward passes of `log_prob`."""
    return TRAIN_FACTOR * forward_flops(log_prob, tf.TensorSpec(images.shape, images.dtype))


def parameters(variables):
    """The number of weights in `variables`."""
    return int(sum(np.prod(v.shape) for v in variables))


def random_images(shape, num_levels, batch):
    """Uniform random pixels in [0, num_levels), int32 `[batch, *shape]`."""
    return tf.constant(np.random.default_rng(0).integers(0, num_levels, (batch, *shape)), tf.int32)
