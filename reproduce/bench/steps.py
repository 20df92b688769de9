"""`python -m reproduce bench --suite steps`: the fp32 matmul peak; PixelCNN++ and Glow training steps and samplers
against `tfd.PixelCNN` and `tfb.Glow` at matched hyper-parameters; the causal-conv ARM's cached against naive
sampling; the PixelCNN++ and Glow `cpu` presets' steps as they train, as fractions of the fp32 and bf16 matmul peaks.
"""

import math

import tensorflow as tf

from reproduce.bench.measure import (OURS, compare_samplers, gflops, matmul_task, measure, measure_steps,
                                     ours_step, parameters, random_images, ratios, step_flops, step_tasks,
                                     tfp_counterpart, tfp_step)
from reproduce.bench.report import MODELS, shape_name, target
from reproduce.runs import Run
from zoo.models import ARM, PixelCNNPlusPlus

PEAK_TARGET, BF16_PEAK_TARGET = 0.4, 0.3  # of the fp32 and the bf16 matmul peak, timed in the same rounds


def _without(model, *keys):
    return {k: v for k, v in model.items() if k not in keys}


def config(quick):
    """The `cpu` presets' models, 15 timed rounds (fewer let the load's noise move the ratios); quick: tiny, one."""
    if quick:
        pixel = {"nr_resnet": 1, "filters": 8, "nr_logistic_mix": 2, "num_scales": 2, "dropout": 0.0,
                 "weight_norm": False}
        glow = {"num_scales": 1, "depth": 1, "filters": 8}
        return {"warmup": 1, "repetitions": 1, "matmul": {"size": 128, "repetitions": 2},
                "pixelcnnpp": {"model": pixel, "num_levels": 256, "batch": 2, "train_shapes": [[4, 4, 3]],
                               "xla_shapes": [], "sample_shape": [4, 4, 1], "sample_images": 2,
                               "sample_repetitions": 1, "sample_budget_s": 60},
                "glow": {"model": {**glow, "coupling": "affine", "permutation": "lu"}, "num_levels": 256,
                         "batch": 2, "image_shape": [4, 4, 1], "sample_images": 2},
                "arm": {"model": {"filters": 8, "kernel_size": 3, "dilations": [1, 2], "residual": True},
                        "num_levels": 17, "image_shape": [4, 4, 1], "sample_images": 2},
                "presets": {name: {"model": {**model, "mixed_precision": "bfloat16"}, "batch": 2,
                                   "image_shape": [4, 4, 1], "num_levels": 256}
                            for name, model in (("pixelcnnpp", pixel), ("glow", glow))}}
    runs = {name: Run(name, "cpu", "mnist", mixed_precision="preset") for name in MODELS}
    pixel, glow = (runs[name].requested_config for name in ("pixelcnnpp", "glow"))
    return {"warmup": 3, "repetitions": 15, "matmul": {"size": 2048, "repetitions": 10},
            "pixelcnnpp": {"model": {**_without(pixel, "mixed_precision", "training_chains"), "weight_norm": True},
                           "num_levels": 256, "batch": 16, "train_shapes": [[28, 28, 1], [32, 32, 3]],
                           "xla_shapes": [[28, 28, 1]],
                           # a naive sampler runs the network 784 times a call: a time budget
                           "sample_shape": [28, 28, 1], "sample_images": 16, "sample_repetitions": 3,
                           "sample_budget_s": 60},
            # against TFP: float32, unchained (TFP's one graph a batch), Glow as `GlowDefaultNetwork` (plain biased
            # hidden convolutions, no preprocessing)
            "glow": {"model": _without(glow, "mixed_precision", "eval_draws", "net_actnorm", "preprocess",
                                       "training_chains"),
                     "num_levels": 256, "batch": 16, "image_shape": [28, 28, 1], "sample_images": 16},
            "arm": {"model": Run("arm", "cpu").requested_config, "num_levels": 17, "image_shape": [8, 8, 1],
                    "sample_images": 16},
            "presets": {name: {"model": _without(run.requested_config, "eval_draws"),
                               "batch": run.train_config["batch_size"], "image_shape": [28, 28, 1],
                               "num_levels": 256} for name, run in runs.items()}}


def versus_tfp(name, cfg, shape, xla, matmul, timing):
    """Our `name`'s step (float32, bfloat16 network, XLA where `xla`) against TFP's on the same random images, the
    matmul in the same rounds: (ours, TFP's dist, measurements with ratios, FLOPs and fractions of the matmul's)."""
    levels, model = cfg["num_levels"], cfg["model"]
    images = random_images(shape, levels, cfg["batch"])
    seed = {"seed": 0} if name == "glow" else {}
    ours, half = (OURS[name](shape, levels, **seed, **{**model, **extra}).build_for_images()
                  for extra in ({}, {"mixed_precision": "bfloat16"}))
    if name == "glow":  # actnorm's data-dependent initialization (TFP's runs in its first step)
        ours.initialize(images)
        half.initialize(images)
    dist, log_prob, tfp_variables, dtype = tfp_counterpart(name, shape, levels, model)
    tfp_images = tf.cast(images, dtype)
    f = step_flops(lambda x: ours.log_prob(x, training=True), images)  # a bf16 network: the same convolutions
    flops = {"ours": f, "ours_bf16": f, "ours_xla": f, "tfp": step_flops(log_prob, tfp_images)}
    steps = {"ours": (ours_step(ours), images), "ours_bf16": (ours_step(half), images),
             "tfp": (tfp_step(log_prob, tfp_variables, math.prod(shape)), tfp_images),
             **({"ours_xla": (ours_step(ours, True), images)} if xla else {})}
    m, mm = measure_steps(step_tasks(steps, len(images)), matmul, *timing)
    return ours, dist, {
        **m, "matmul": mm, **ratios(m, ours_vs_tfp=("ours", "tfp"), ours_bf16_vs_tfp=("ours_bf16", "tfp")),
        **(ratios(m, xla_speedup=("ours_xla", "ours")) if xla else {}),
        "flops": {k: {"flops_per_step": flops[k], "gflops": gflops(flops[k], m[k]),
                      "fraction_of_matmul_peak": gflops(flops[k], m[k]) / mm["gflops"]} for k in m},
        "parameters": {"ours": parameters(ours.trainable_variables), "tfp": parameters(tfp_variables)}}


def pixelcnnpp_train(cfg, timing, matmul):
    """A row a training shape: `versus_tfp` against `tfd.PixelCNN`."""
    return [{"image_shape": shape, "batch": cfg["batch"],
             **versus_tfp("pixelcnnpp", cfg, shape, shape in cfg["xla_shapes"], matmul, timing)[2]}
            for shape in cfg["train_shapes"]]


def glow_train_and_sample(cfg, timing, matmul):
    """`versus_tfp` against `tfb.Glow` ("train"), and both sides' `sample(n)` ("sample")."""
    shape, n = cfg["image_shape"], cfg["sample_images"]
    ours, dist, train = versus_tfp("glow", cfg, shape, True, matmul, timing)
    sample = measure({"ours": {"run": lambda: ours.sample(n, seed=0), "images": n},  # tfb.Reshape takes no tensor n
                      "tfp": {"run": tf.function(lambda: dist.sample(n, seed=0)), "images": n}}, *timing)
    return {"image_shape": shape, "batch": cfg["batch"], "train": train,
            "sample": {**sample, "images": n, **ratios(sample, ours_vs_tfp=("ours", "tfp"))}}


def preset_steps(cfg, timing, matmul, matmul16):
    """Our PixelCNN++ and Glow steps as their `cpu` presets train, as fractions of the fp32 and bf16 matmuls'."""
    out = {}
    for name, c in cfg.items():
        shape, levels, batch = c["image_shape"], c["num_levels"], c["batch"]
        model = OURS[name](shape, levels, **c["model"]).build_for_images()
        images = random_images(shape, levels, batch)
        model.initialize(images)
        flops, step = step_flops(lambda x: model.log_prob(x, training=True), images), ours_step(model)
        m = measure({"ours": {"run": lambda: step(images), "images": batch}, "matmul": matmul,
                     "matmul_bf16": matmul16}, *timing)
        mm, mm16 = m.pop("matmul"), m.pop("matmul_bf16")
        rate = gflops(flops, m["ours"])
        out[name] = {"image_shape": shape, "batch": batch, "precision": c["model"].get("mixed_precision") or
                     "float32", **m, "matmul": mm, "matmul_bf16": mm16, "flops_per_step": flops, "gflops": rate,
                     "fraction_of_matmul_peak": rate / mm["gflops"],
                     "fraction_of_bf16_matmul_peak": rate / mm16["gflops"]}
    return out


def arm_sample(cfg, timing):
    """The causal-conv ARM's cached against naive `sample(n)`."""
    shape, n = cfg["image_shape"], cfg["sample_images"]
    model = ARM(shape, cfg["num_levels"], **cfg["model"]).build_for_images()
    m = measure({method: {"run": (lambda method=method: model.sample(n, seed=0, method=method)), "images": n}
                 for method in ("cached", "naive")}, *timing)
    return {"image_shape": shape, "images": n, **m, **ratios(m, cached_vs_naive=("cached", "naive"))}


def matmul_peak(matmul, repetitions):
    """The matmul timed alone: its size, FLOPs, seconds and median and best GFLOP/s."""
    m = measure({"matmul": matmul}, 2, repetitions)["matmul"]
    return {**{k: matmul[k] for k in ("size", "copies", "flops")}, "seconds": m["seconds"], "gflops": m["gflops"],
            "gflops_best": matmul["flops"] / min(m["seconds"]) / 1e9}


def sections(cfg, data_dir=None):
    """The suite's sections in order: (name, thunk)."""
    timing, pixel, sample = (cfg["warmup"], cfg["repetitions"]), cfg["pixelcnnpp"], cfg["pixelcnnpp"]["sample_shape"]
    matmul, matmul16 = (matmul_task(cfg["matmul"]["size"], dtype) for dtype in (tf.float32, tf.bfloat16))
    return [("matmul_peak", lambda: matmul_peak(matmul, cfg["matmul"]["repetitions"])),
            ("pixelcnnpp_train", lambda: pixelcnnpp_train(pixel, timing, matmul)),
            ("pixelcnnpp_sample", lambda: compare_samplers(  # our PixelCNN++ against tfd.PixelCNN
                PixelCNNPlusPlus(sample, pixel["num_levels"], **pixel["model"]).build_for_images(),
                tfp_counterpart("pixelcnnpp", sample, pixel["num_levels"], pixel["model"])[0], pixel, sample)),
            ("glow", lambda: glow_train_and_sample(cfg["glow"], timing, matmul)),
            ("arm_sample", lambda: arm_sample(cfg["arm"], timing)),
            ("preset_steps", lambda: preset_steps(cfg["presets"], timing, matmul, matmul16))]


def targets(r):
    """The suite's targets, each with its measured ratio or fraction of the peak."""
    s, g = r["pixelcnnpp_sample"], r["glow"]
    where = f"PixelCNN++ {shape_name(s['image_shape'])}, {s['images']} images"
    out = [target(f"cached sampling >= 20x our naive sampler ({where})", s["cached_vs_naive"], 20.0),
           target(f"cached sampling >= 20x TFP's PixelCNN.sample ({where})", s["cached_vs_tfp"], 20.0)]
    bf16 = "ours with a bfloat16 network, TFP float32"
    for key, needed, rows in (("pixelcnnpp", 1.5, r["pixelcnnpp_train"]), ("glow", 1.2, [g])):
        ours, tfp_name = MODELS[key]
        for row in rows:
            row_where = f"{shape_name(row['image_shape'])}, batch {row['batch']}, XLA off both"
            for ratio_key, precision in (("ours_vs_tfp", "float32 both"), ("ours_bf16_vs_tfp", bf16)):
                out.append(target(f"{ours} training step >= {needed}x {tfp_name}'s ({row_where}, {precision})",
                                  row.get("train", row)[ratio_key], needed))
    for name, p in r["preset_steps"].items():
        chains = r["config"]["presets"][name]["model"].get("training_chains", 1)
        where = (f"cpu preset: {shape_name(p['image_shape'])}, batch {p['batch']}, {p['precision']} network, "
                 + (f"{chains} training chains, " if chains > 1 else "") + "XLA off")
        for peak, key, needed in (("fp32", "fraction_of_matmul_peak", PEAK_TARGET),
                                  ("bf16", "fraction_of_bf16_matmul_peak", BF16_PEAK_TARGET)):
            out.append(target(f"{MODELS[name][0]} training step >= {needed:.0%} of the {peak} matmul peak ({where})",
                              p[key], needed))
    return out
