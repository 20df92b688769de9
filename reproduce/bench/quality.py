"""`python -m reproduce bench --suite quality`: validation bits/dim reached per second of training, our PixelCNN++ and
Glow `cpu` presets against `tfd.PixelCNN` and `tfb.Glow` at the same sizes, trained in alternating slices in one
process on the same seeded batches with the preset's optimizer, each scored on its own clock (`templates/quality.md`).
"""

import contextlib
import functools
import hashlib
import math
import time
import types
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from reproduce.bench.measure import OURS, parameters, tfp_counterpart, train_step
from reproduce.bench.report import FIGURE, MODELS, minutes, target
from reproduce.cli_errors import fail, not_prepared
from reproduce.runs import Run
from zoo import data
from zoo.training import epoch_batches, make_optimizer

QUALITY_FRACTION = 0.5  # ours reaches TFP's final bits/dim in at most this fraction of TFP's time


def _pair(name, tiny=None):
    """Our `cpu` preset for 8-bit MNIST as `python -m reproduce` trains it here, or a `tiny` model at its precision."""
    run = Run(name, "cpu", "mnist")
    model = dict(run.model_config if tiny is None else {**tiny, "mixed_precision": run.model_config["mixed_precision"]})
    if name == "pixelcnnpp":
        model.setdefault("weight_norm", True)  # PixelCNNPlusPlus' default, stated for TFP's side
    return {"model": model, "batch": run.train_config["batch_size"], "optimizer": dict(run.train_config["optimizer"])}


def config(quick):
    """20 minutes a side; quick: digits, tiny models with the presets' optimizers, a second a side."""
    if quick:
        return {"dataset": "digits", "seed": 0, "budget_seconds": 1.0, "checkpoint_seconds": 0.5,
                "slice_steps": 4, "eval_images": 64, "eval_batch": 32,
                "pixelcnnpp": {**_pair("pixelcnnpp", {"nr_resnet": 1, "filters": 8, "nr_logistic_mix": 2,
                                                      "num_scales": 1, "dropout": 0.0, "weight_norm": False}),
                               "batch": 16},
                "glow": {**_pair("glow", {"num_scales": 1, "depth": 1, "filters": 8, "coupling": "affine",
                                          "permutation": "lu", "net_actnorm": True, "preprocess": "logit",
                                          "eval_draws": 2}), "batch": 16}}
    return {"dataset": "mnist", "seed": 0, "budget_seconds": 1200.0, "checkpoint_seconds": 120.0, "slice_steps": 50,
            "eval_images": 2000, "eval_batch": 250, "pixelcnnpp": _pair("pixelcnnpp"), "glow": _pair("glow")}


def digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@contextlib.contextmanager
def averaged_weights(optimizer):
    """Inside the block the variables hold their Polyak averages (if any), swapped as `fit` swaps them to validate."""
    swap = keras.callbacks.SwapEMAWeights()
    swap.set_model(types.SimpleNamespace(optimizer=optimizer))
    if optimizer.use_ema:
        swap.on_test_begin()
    try:
        yield
    finally:
        swap.on_test_end()  # swaps back what it swapped


class Side:
    """One side of a pair: its training step, evaluation and records."""

    def __init__(self, name, loss, variables, bits_per_dim, dtype, optimizer_config, initialize=None):
        self.name, self.feed, self.initialize = name, functools.partial(tf.constant, dtype=dtype), initialize
        self.optimizer = make_optimizer(**optimizer_config)
        self.step = train_step(loss, variables, self.optimizer)
        self.bits_per_dim, self.parameters = tf.function(bits_per_dim), parameters(variables)
        self.seconds, self.steps, self.checkpoints_passed = 0.0, 0, 0
        self.first_step_seconds = self.diverged_at_step = None
        self.curve, self.slices, self.losses, self.batches = [], [], [], hashlib.sha256()

    def train_one(self, batch):
        """One step on `batch` (uint8 numpy): its seconds, the loss fetched to the host."""
        self.batches.update(batch.tobytes())
        start = time.perf_counter()
        loss = float(self.step(self.feed(batch)))
        seconds, self.steps = time.perf_counter() - start, self.steps + 1
        self.losses.append(loss)
        if not math.isfinite(loss):
            self.diverged_at_step = self.steps
        return seconds

    def checkpoint(self, mark, images, batch):
        """Adds to the curve the mean float32 bits/dim over `images` with the averaged weights."""
        with averaged_weights(self.optimizer):
            bpd = np.concatenate([self.bits_per_dim(self.feed(images[i:i + batch])).numpy()
                                  for i in range(0, len(images), batch)]).astype(np.float64)
        point = {"checkpoint_seconds": mark, "seconds": self.seconds, "steps": self.steps,
                 "bits_per_dim": float(bpd.mean()), "images": len(images), "images_digest": digest(images[:len(bpd)])}
        self.curve.append(point)
        print(f"  {self.name}: {self.seconds:.0f} s, {self.steps} steps, {point['bits_per_dim']:.4f} bits/dim",
              flush=True)

    def record(self):
        """The side's JSON-ready record: steps, seconds, curve, slices, final bits/dim."""
        last = self.slices[-1]["steps"] if self.slices else 0
        return {"parameters": self.parameters, "steps": self.steps, "training_seconds": self.seconds,
                "first_step_seconds": self.first_step_seconds, "curve": self.curve, "slices": self.slices,
                "diverged_at_step": self.diverged_at_step,
                "final_bits_per_dim": self.curve[-1]["bits_per_dim"] if self.curve else None,
                "train_loss_last_slice": float(np.mean(self.losses[-last:])) if last else None}


def sides(name, cfg, shape, levels, seed):
    """[ours, TFP's]: ours initialized on its first batch (as `zoo.training.train`), TFP's inside its first step. Both
    flows score with the same number of fixed dequantization draws."""
    model, scale = cfg["model"], math.prod(shape) * math.log(2.0)  # nats per image -> bits/dim
    ours = OURS[name](shape, levels, **({"seed": seed} if name == "glow" else {}), **model).build_for_images()
    dist, log_prob, variables, dtype = tfp_counterpart(name, shape, levels, model)
    if name == "pixelcnnpp":
        def tfp_bits_per_dim(images):
            return -dist.log_prob(images) / scale
    else:
        noise = tf.random.stateless_uniform([ours.eval_draws, 1, *shape], seed=[seed, 1])

        def tfp_bits_per_dim(images):
            v = tf.reshape((tf.cast(images, tf.float32)[None] + noise) / levels - 0.5, [-1, *shape])
            lp = tf.reshape(dist.log_prob(v), [ours.eval_draws, -1]) - math.prod(shape) * math.log(levels)
            return -tf.reduce_mean(lp, axis=0) / scale
    theirs = Side("tfp", lambda x: -tf.reduce_mean(log_prob(x)) / scale, variables, tfp_bits_per_dim, dtype,
                  cfg["optimizer"])
    return [Side("ours", lambda x: ours.compute_loss(y_pred=ours(x, training=True)), ours.trainable_variables,
                 ours.bits_per_dim, tf.int32, cfg["optimizer"], initialize=ours.initialize), theirs]


def checkpoints(budget, every):
    """Training seconds at which a side is evaluated: every `every`, and the budget."""
    n = max(1, math.ceil(budget / every - 1e-9))
    return [min(budget, every * (k + 1)) for k in range(n)]


def race(pair_sides, train_images, batch, eval_images, cfg):
    """Trains the sides in alternating slices up to the budget, each on its own copy of one seeded stream of batches,
    evaluating at the checkpoints; fills each side's records."""
    budget, marks = cfg["budget_seconds"], checkpoints(cfg["budget_seconds"], cfg["checkpoint_seconds"])
    data = {side.name: epoch_batches(train_images, batch, cfg["seed"]).as_numpy_iterator() for side in pair_sides}
    for side in pair_sides:  # initialization and the first (tracing) step: off the clock
        first = next(data[side.name])
        if side.initialize is not None:
            side.initialize(side.feed(first))
        side.first_step_seconds = side.train_one(first)
        print(f"  {side.name}: first step {side.first_step_seconds:.1f} s", flush=True)

    def running(side):
        return side.seconds < budget and side.diverged_at_step is None

    last = None
    while any(running(s) for s in pair_sides):
        # The side behind on its clock goes next; at a tie, not the one that just trained.
        side = last = min((s for s in pair_sides if running(s)), key=lambda s: (s.seconds, s is last))
        start_step, start_seconds = side.steps, side.seconds
        while side.steps - start_step < cfg["slice_steps"] and running(side):
            side.seconds += side.train_one(next(data[side.name]))
            passed = sum(mark <= side.seconds for mark in marks)  # a step past two marks evaluates once
            if passed > side.checkpoints_passed:
                side.checkpoints_passed = passed
                side.checkpoint(marks[passed - 1], eval_images, cfg["eval_batch"])
        side.slices.append({"round": sum(len(s.slices) for s in pair_sides), "start_step": start_step,
                            "steps": side.steps - start_step, "start_seconds": start_seconds,
                            "seconds": side.seconds - start_seconds, "batches_digest": side.batches.hexdigest()})


def seconds_to_reach(curve, target_bpd):
    """The first training second a curve reaches `target_bpd`, interpolated between checkpoints; None if never."""
    before = None
    for point in curve:
        t, b = point["seconds"], point["bits_per_dim"]
        if b <= target_bpd:
            return t if before is None else before[0] + (before[1] - target_bpd) / (before[1] - b) * (t - before[0])
        before = (t, b)
    return None


def pair(name, cfg, train_images, eval_images, spec):
    """Pair `name` raced: both sides' records, the gap and our time to TFP's final bits/dim."""
    c = cfg[name]
    tf.random.set_seed(cfg["seed"])
    pair_sides = sides(name, c, spec.image_shape, spec.num_levels, cfg["seed"])
    race(pair_sides, train_images, c["batch"], eval_images, cfg)
    ours, theirs = (side.record() for side in pair_sides)
    final_ours, final_tfp = ours["final_bits_per_dim"], theirs["final_bits_per_dim"]
    reach = seconds_to_reach(ours["curve"], final_tfp) if final_tfp is not None else None
    tfp_seconds = theirs["curve"][-1]["seconds"] if theirs["curve"] else None
    return {"image_shape": list(spec.image_shape), "num_levels": spec.num_levels, "batch": c["batch"],
            "eval_images": len(eval_images), "eval_images_digest": digest(eval_images), "ours": ours, "tfp": theirs,
            "gap_bits_per_dim": final_ours - final_tfp if None not in (final_ours, final_tfp) else None,
            "ours_seconds_to_tfp_final": reach,
            # already there at our first checkpoint: those seconds are an upper bound
            "ours_reached_by_first_checkpoint": reach is not None and ours["curve"][0]["bits_per_dim"] <= final_tfp,
            "tfp_seconds_to_final": tfp_seconds,
            "fraction_of_tfp_time": reach / tfp_seconds if reach is not None and tfp_seconds else None}


def sections(cfg, data_dir=None):
    """A section a pair; the data loads once, on the first."""

    @functools.cache
    def images():
        """(the train split, the first `eval_images` validation images as one uint8 array)."""
        try:
            train = data.load(cfg["dataset"], "train", data_dir)
            evaluation = data.load(cfg["dataset"], "validation", data_dir).take(cfg["eval_images"])
            return train, np.concatenate(list(evaluation.batch(4096).as_numpy_iterator()))
        except data.DatasetNotPrepared as e:
            fail(not_prepared(e))
        except FileNotFoundError as e:  # e.g. a --data-dir that does not exist
            fail(str(e))

    spec = data.spec(cfg["dataset"])
    return [(f"{name}_quality", lambda name=name: pair(name, cfg, *images(), spec)) for name in MODELS]


def targets(r):
    """Per pair: ours' seconds to TFP's final bits/dim as a fraction of TFP's, at most one half."""
    cfg, out = r["config"], []
    for name, (ours, tfp) in MODELS.items():
        q = r[f"{name}_quality"]
        row = target(f"ours reaches TFP's final bits/dim in at most half TFP's time ({ours} `cpu` preset vs {tfp}, "
                     f"{cfg['dataset']}, batch {q['batch']}, {minutes(cfg['budget_seconds'])} a side)",
                     q["fraction_of_tfp_time"], QUALITY_FRACTION, at_most=True)
        out.append({**row, "upper_bound": True} if q["ours_reached_by_first_checkpoint"] else row)
    return out


def write_figure(results, out):
    """Bits/dim against training minutes (seconds for a short budget), ours and TFP's, a panel a pair: OUT/FIGURE."""
    from zoo.figures import plt, save_png  # pyplot on the Agg backend, as every figure of the zoo

    scale, unit = (60.0, "minutes") if results["config"]["budget_seconds"] >= 120 else (1.0, "seconds")
    fig, axes = plt.subplots(1, len(MODELS), figsize=(5 * len(MODELS), 3.6), squeeze=False)
    for ax, name in zip(axes[0], MODELS):
        r, (ours, tfp) = results[f"{name}_quality"], MODELS[name]
        for key, label in (("ours", f"ours ({ours})"), ("tfp", tfp)):
            curve = r[key]["curve"]
            ax.plot([p["seconds"] / scale for p in curve], [p["bits_per_dim"] for p in curve], marker="o",
                    markersize=3, label=label)
        if r["tfp"]["final_bits_per_dim"] is not None:
            ax.axhline(r["tfp"]["final_bits_per_dim"], color="gray", linestyle=":", linewidth=1)
        if r["ours_seconds_to_tfp_final"] is not None:
            ax.axvline(r["ours_seconds_to_tfp_final"] / scale, color="gray", linestyle="--", linewidth=1,
                       label="ours reaches TFP's final")
        ax.set(xlabel=f"training {unit} (each side's own clock)",
               ylabel=f"validation bits/dim ({r['eval_images']} images)")
        ax.set_title(f"{ours}: ours vs {tfp}, batch {r['batch']}", fontsize=9)
        ax.legend(fontsize=8)
    return save_png(fig, Path(out) / FIGURE)
