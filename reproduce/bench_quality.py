"""`python -m reproduce bench --suite quality`: bits/dim reached per second of training,
ours against TFP's, side by side in one process.

Two pairs on 8-bit MNIST (`--quick`: 8x8 digits, tiny models):

- PixelCNN++: our `cpu` preset's model as it trains (its bfloat16 network where the
  machine runs bfloat16 natively, else float32, as `python -m reproduce`; weight norm,
  batch) against `tfd.PixelCNN` at the same hyper-parameters (`bench.tfp_pixelcnn`;
  float32: TFP's PixelCNN has no 16-bit path).
- Glow: our `cpu` preset's model as it trains (actnorm after the hidden convolutions,
  logit preprocessing, its network precision chosen alike) against `tfb.Glow` at the same levels, steps
  and width (`bench.tfp_glow`: its `GlowDefaultNetwork`, pixels scaled to [-1/2, 1/2),
  float32).

Both sides of a pair train on the same batches in the same order (one seeded stream,
`zoo.training.epoch_batches`, as `python -m reproduce` feeds the preset; each side reads
batch k at its step k) with the preset's optimizer (`zoo.training.make_optimizer` of the
preset's settings: learning rate, warm-up, per-step decay, Polyak averaging, clipping),
one optimizer object a side, built alike. Each side's step is the same `tf.function`
(`bench.train_step`, XLA off, as the presets train on CPU): a GradientTape over the
batch's mean bits/dim, one optimizer update. Data-dependent initializations (weight
norm, actnorm) run before the clock starts: ours through `model.initialize` on the first
batch (as `zoo.training.train`), TFP's inside its first step.

Training alternates in slices of `slice_steps` steps, the side with fewer accumulated
training seconds going next (strict alternation while the two are as fast), so both
see the same load from the rest of the machine. A side's clock counts only its steps
after the first (the first call traces and compiles; its seconds are reported apart),
each timed to its loss on the host. Every `checkpoint_seconds` of a side's own clock
(checked after each step), and at the end of its `budget_seconds`, the side is
evaluated on the same `eval_images` validation images in float32 (ours: `log_prob`
outside training, with the Polyak-averaged weights as the preset evaluates; TFP's:
`log_prob` with its Polyak-averaged weights; both flows with the same number of fixed
dequantization draws); evaluation time is not training time.

Per pair: each side's curve (bits/dim against training seconds), the gap at the end of
the budget (ours minus TFP's final bits/dim), and the training seconds ours needs to
reach TFP's final bits/dim (linear interpolation between our checkpoints; None if it
never does), also as a fraction of TFP's seconds. A figure: `OUT/figures/bench-quality.png`.
"""

import hashlib
import math
import time

import numpy as np
import tensorflow as tf

from reproduce import bench
from reproduce import glow as glow_paper
from reproduce import pixelcnnpp as pixelcnnpp_paper
from zoo import data
from zoo.models import Glow, PixelCNNPlusPlus
from zoo.training import epoch_batches, make_optimizer, network_precision

FIGURE = "figures/bench-quality.png"  # under OUT
PAIRS = ("pixelcnnpp", "glow")
LN2 = math.log(2.0)


def _preset(paper, dataset):
    """The `cpu` preset of a paper file for `dataset`: (model, train) dicts."""
    from reproduce.__main__ import resolve_preset
    p = resolve_preset(paper, "cpu", dataset)
    return dict(p["model"]), dict(p["train"])


def _pair_config(paper, dataset, model=None):
    preset_model, train = _preset(paper, dataset)
    model = dict(preset_model if model is None else model)
    if paper is pixelcnnpp_paper:
        model.setdefault("weight_norm", True)  # PixelCNNPlusPlus' default, stated for TFP's side
    # as `python -m reproduce` trains it on this machine
    model["mixed_precision"], _ = network_precision(model.get("mixed_precision"))
    return {"model": model, "batch": train["batch_size"], "optimizer": dict(train["optimizer"])}


def full_config():
    """The `cpu` presets on 8-bit MNIST, 20 minutes of training a side."""
    return {
        "dataset": "mnist", "seed": 0,
        # Every 2 minutes: scoring the 2000 images takes about 66 s (PixelCNN++) and 39 s (Glow) a
        # side on one core, so 10 checkpoints a side keep the whole suite near 2 hours.
        "budget_seconds": 1200.0, "checkpoint_seconds": 120.0, "slice_steps": 50,
        "eval_images": 2000, "eval_batch": 250,
        "pixelcnnpp": _pair_config(pixelcnnpp_paper, "mnist"),
        "glow": _pair_config(glow_paper, "mnist"),
    }


def quick_config():
    """Digits (no TFDS), tiny models with the presets' structure and optimizers, a
    couple of seconds a side (tests/test_bench_suites.py)."""
    return {
        "dataset": "digits", "seed": 0,
        "budget_seconds": 1.0, "checkpoint_seconds": 0.5, "slice_steps": 4,
        "eval_images": 64, "eval_batch": 32,
        "pixelcnnpp": {**_pair_config(pixelcnnpp_paper, "mnist", {
            "nr_resnet": 1, "nr_filters": 8, "nr_logistic_mix": 2, "num_scales": 1, "dropout": 0.0,
            "weight_norm": False, "mixed_precision": "bfloat16"}), "batch": 16},
        "glow": {**_pair_config(glow_paper, "mnist", {
            "num_scales": 1, "depth": 1, "hidden_channels": 8, "coupling": "affine", "permutation": "lu",
            "net_actnorm": True, "preprocess": "logit", "mixed_precision": "bfloat16", "eval_draws": 2}),
            "batch": 16},
    }


# ---- data ------------------------------------------------------------------------


class BatchStream:
    """One seeded stream of training batches read by both sides: `get(k)` is batch k
    (uint8 numpy), the same array for every reader; batches both have read are dropped."""

    def __init__(self, images, batch, seed, readers):
        self._iterator = iter(epoch_batches(images, batch, seed).as_numpy_iterator())
        self._cache, self._first = [], 0
        self._read = {r: 0 for r in readers}

    def get(self, reader, k):
        if k != self._read[reader]:
            raise ValueError(f"{reader} asked for batch {k}, expected {self._read[reader]} (in order).")
        while self._first + len(self._cache) <= k:
            self._cache.append(next(self._iterator))
        batch = self._cache[k - self._first]
        self._read[reader] = k + 1
        drop = min(self._read.values()) - self._first
        if drop > 0:
            del self._cache[:drop]
            self._first += drop
        return batch


def load_images(dataset, split, data_dir, count=None):
    """The first `count` images of a split (all when None), uint8 numpy `[n, H, W, C]`."""
    ds = data.load(dataset, split, data_dir)
    if count is not None:
        ds = ds.take(count)
    return np.concatenate([b for b in ds.batch(4096).as_numpy_iterator()])


def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ---- the sides ---------------------------------------------------------------------


class Side:
    """One side of a pair: its training step, evaluation, optimizer and records."""

    def __init__(self, name, loss, variables, optimizer, bits_per_dim, feed, parameters, initialize=None):
        self.name, self.optimizer, self.feed, self.parameters = name, optimizer, feed, parameters
        self.step = bench.train_step(loss, variables, optimizer, False)
        self.bits_per_dim = tf.function(bits_per_dim)
        self.initialize = initialize
        self.seconds, self.steps, self.next_checkpoint = 0.0, 0, 0
        self.curve, self.slices, self.losses = [], [], []
        self.first_step_seconds = None
        self.diverged_at_step = None
        self._chain = hashlib.sha256()  # of every batch trained on, in order

    def train_one(self, batch):
        """One step on `batch` (uint8 numpy): its seconds, the loss fetched to the host."""
        self._chain.update(batch.tobytes())
        start = time.perf_counter()
        loss = float(self.step(self.feed(batch)))
        seconds = time.perf_counter() - start
        self.steps += 1
        self.losses.append(loss)
        if not math.isfinite(loss):
            self.diverged_at_step = self.steps
        return seconds

    def batches_digest(self):
        return self._chain.copy().hexdigest()

    def evaluate(self, images, batch):
        """Mean bits/dim over `images` in float32, Polyak-averaged weights swapped in when the
        optimizer keeps them; and the digest of the images it scored."""
        with averaged_weights(self.optimizer):
            scored = [self.bits_per_dim(self.feed(images[i:i + batch])).numpy()
                      for i in range(0, len(images), batch)]
        bpd = np.concatenate(scored).astype(np.float64)
        return float(bpd.mean()), digest(images[:len(bpd)])


class averaged_weights:
    """Inside the block the optimizer's variables hold their Polyak averages (Keras'
    `use_ema`; as `keras.callbacks.SwapEMAWeights` swaps them for validation); a no-op
    for an optimizer without averaging."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.saved = None

    def __enter__(self):
        opt = self.optimizer
        if getattr(opt, "use_ema", False) and getattr(opt, "_model_variables_moving_average", None):
            pairs = list(zip(opt._trainable_variables, opt._model_variables_moving_average))
            self.saved = [(v, v.numpy()) for v, _ in pairs]
            for v, average in pairs:
                v.assign(average)
        return self

    def __exit__(self, *exc):
        for v, value in self.saved or ():
            v.assign(value)
        return False


def _ints(images):
    return tf.constant(images, tf.int32)


def _floats(images):
    return tf.constant(images, tf.float32)


def pixelcnnpp_sides(cfg, shape, levels):
    model = cfg["model"]
    ours = PixelCNNPlusPlus(shape, levels, **model).build_for_images()
    dist = bench.tfp_pixelcnn(shape, levels, model)
    num_dims = math.prod(shape)
    tfp_vars = dist.network.trainable_variables
    return [
        Side("ours", lambda x: ours.compute_loss(y_pred=ours(x, training=True)), ours.trainable_variables,
             make_optimizer(**cfg["optimizer"]), lambda x: ours.bits_per_dim(x), _ints,
             bench.parameters(ours.trainable_variables), initialize=lambda b: ours.initialize(_ints(b))),
        Side("tfp", lambda x: -tf.reduce_mean(dist.log_prob(x, training=True)) / (num_dims * LN2), tfp_vars,
             make_optimizer(**cfg["optimizer"]), lambda x: -dist.log_prob(x) / (num_dims * LN2), _floats,
             bench.parameters(tfp_vars)),
    ]


def glow_sides(cfg, shape, levels, seed):
    model = cfg["model"]
    ours = Glow(shape, levels, seed=seed, **model).build_for_images()
    dist, bijector, log_prob = bench.tfp_glow(shape, levels, model)
    num_dims = math.prod(shape)
    # TFP's evaluation: as ours, the mean log-likelihood over the same number of fixed
    # dequantization draws shared by every image.
    noise = tf.random.stateless_uniform([ours.eval_draws, 1, *shape], seed=[seed, 1])

    def tfp_bits_per_dim(images):
        x = tf.cast(images, tf.float32)[None]
        v = tf.reshape((x + noise) / levels - 0.5, [-1, *shape])
        lp = tf.reshape(dist.log_prob(v), [ours.eval_draws, -1]) - num_dims * math.log(levels)
        return -tf.reduce_mean(lp, axis=0) / (num_dims * LN2)

    tfp_vars = bijector.trainable_variables
    return [
        Side("ours", lambda x: ours.compute_loss(y_pred=ours(x, training=True)), ours.trainable_variables,
             make_optimizer(**cfg["optimizer"]), lambda x: ours.bits_per_dim(x), _ints,
             bench.parameters(ours.trainable_variables), initialize=lambda b: ours.initialize(_ints(b))),
        Side("tfp", lambda x: -tf.reduce_mean(log_prob(x)) / (num_dims * LN2), tfp_vars,
             make_optimizer(**cfg["optimizer"]), tfp_bits_per_dim, _ints, bench.parameters(tfp_vars)),
    ]


# ---- the race ----------------------------------------------------------------------


def checkpoints(budget, every):
    """Training seconds at which a side is evaluated: every `every`, and the budget."""
    n = max(1, math.ceil(budget / every - 1e-9))
    return [min(budget, every * (k + 1)) for k in range(n)]


def race(sides, stream, eval_images, cfg):
    """Trains the sides in alternating slices up to the budget, evaluating at the
    checkpoints; fills each side's records."""
    budget, size = cfg["budget_seconds"], cfg["slice_steps"]
    marks = checkpoints(budget, cfg["checkpoint_seconds"])
    for side in sides:  # initialization and the first (tracing) step: off the clock
        batch = stream.get(side.name, 0)
        if side.initialize is not None:
            side.initialize(batch)
        side.first_step_seconds = side.train_one(batch)
        print(f"  {side.name}: first step {side.first_step_seconds:.1f} s", flush=True)
    last, rounds = None, 0

    def running(side):
        return side.seconds < budget and side.diverged_at_step is None

    while any(running(s) for s in sides):
        # The side behind on its clock goes next; at a tie, not the one that just trained.
        side = min((s for s in sides if running(s)), key=lambda s: (s.seconds, s is last))
        last = side
        start_step, start_seconds = side.steps, side.seconds
        while side.steps - start_step < size and running(side):
            side.seconds += side.train_one(stream.get(side.name, side.steps))
            if side.next_checkpoint < len(marks) and side.seconds >= marks[side.next_checkpoint]:
                while side.next_checkpoint < len(marks) and side.seconds >= marks[side.next_checkpoint]:
                    side.next_checkpoint += 1
                bpd, images_digest = side.evaluate(eval_images, cfg["eval_batch"])
                side.curve.append({"checkpoint_seconds": marks[side.next_checkpoint - 1],
                                   "seconds": side.seconds, "steps": side.steps, "bits_per_dim": bpd,
                                   "images": len(eval_images), "images_digest": images_digest})
                print(f"  {side.name}: {side.seconds:.0f} s, {side.steps} steps, {bpd:.4f} bits/dim", flush=True)
        side.slices.append({"round": rounds, "start_step": start_step, "steps": side.steps - start_step,
                            "start_seconds": start_seconds, "seconds": side.seconds - start_seconds,
                            "batches_digest": side.batches_digest()})
        rounds += 1


def seconds_to_reach(curve, target):
    """The first training second at which a curve reaches `target` bits/dim, linearly
    interpolated between its checkpoints (its first checkpoint's seconds when that one is
    already there); None if it never does."""
    before = None
    for point in curve:
        t, b = point["seconds"], point["bits_per_dim"]
        if b <= target:
            if before is None:
                return t
            t0, b0 = before
            return t0 + (b0 - target) / (b0 - b) * (t - t0)
        before = (t, b)
    return None


def _side_record(side):
    losses = np.asarray(side.losses, np.float64)
    return {"parameters": side.parameters, "steps": side.steps, "training_seconds": side.seconds,
            "first_step_seconds": side.first_step_seconds, "curve": side.curve, "slices": side.slices,
            "diverged_at_step": side.diverged_at_step,
            "final_bits_per_dim": side.curve[-1]["bits_per_dim"] if side.curve else None,
            "train_loss_last_slice": float(losses[-side.slices[-1]["steps"]:].mean()) if side.slices else None}


def pair(name, cfg, train_images, eval_images, shape, levels):
    c = cfg[name]
    tf.random.set_seed(cfg["seed"])
    sides = pixelcnnpp_sides(c, shape, levels) if name == "pixelcnnpp" else glow_sides(c, shape, levels, cfg["seed"])
    stream = BatchStream(train_images, c["batch"], cfg["seed"], [s.name for s in sides])
    race(sides, stream, eval_images, cfg)
    ours, theirs = ({**_side_record(s)} for s in sides)
    result = {"image_shape": list(shape), "num_levels": levels, "batch": c["batch"],
              "eval_images": len(eval_images), "eval_images_digest": digest(eval_images),
              "ours": ours, "tfp": theirs}
    final_ours, final_tfp = ours["final_bits_per_dim"], theirs["final_bits_per_dim"]
    both = final_ours is not None and final_tfp is not None
    result["gap_bits_per_dim"] = final_ours - final_tfp if both else None
    reach = seconds_to_reach(ours["curve"], final_tfp) if final_tfp is not None else None
    result["ours_seconds_to_tfp_final"] = reach
    # Already there at our first checkpoint: those seconds are an upper bound.
    result["ours_reached_by_first_checkpoint"] = bool(
        reach is not None and ours["curve"] and reach == ours["curve"][0]["seconds"]
        and ours["curve"][0]["bits_per_dim"] <= final_tfp)
    tfp_seconds = theirs["curve"][-1]["seconds"] if theirs["curve"] else None
    result["tfp_seconds_to_final"] = tfp_seconds
    result["fraction_of_tfp_time"] = reach / tfp_seconds if reach is not None and tfp_seconds else None
    return result


def sections(cfg, data_dir=None):
    """The suite's sections: (name, thunk) a pair."""
    spec = data.spec(cfg["dataset"])
    loaded = {}

    def images():
        if not loaded:
            try:
                loaded["train"] = data.load(cfg["dataset"], "train", data_dir)
                loaded["eval"] = load_images(cfg["dataset"], "validation", data_dir, cfg["eval_images"])
            except data.DatasetNotPrepared as e:
                from reproduce.__main__ import fail
                fail(f"dataset {e.name!r} is not prepared under {e.data_dir}: on a machine with network run "
                     f"`tfds build {e.tfds_name} --data_dir DIR`, then pass --data-dir DIR (or set TFDS_DATA_DIR).")
            except FileNotFoundError as e:  # e.g. a --data-dir that does not exist
                from reproduce.__main__ import fail
                fail(str(e))
        return loaded["train"], loaded["eval"]

    def run(name):
        train, evaluation = images()
        return pair(name, cfg, train, evaluation, spec.image_shape, spec.num_levels)

    return [(f"{name}_quality", (lambda name=name: run(name))) for name in PAIRS]


# ---- the figure --------------------------------------------------------------------

TITLES = {"pixelcnnpp": ("PixelCNN++", "tfd.PixelCNN"), "glow": ("Glow", "tfb.Glow")}


def write_figure(results, out):
    """Bits/dim against training minutes (seconds for a short budget), ours and TFP's, one panel a pair:
    `out/figures/bench-quality.png`."""
    from pathlib import Path

    from zoo.figures import plt  # pyplot on the Agg backend, as every figure of the zoo
    from zoo.files import atomic_write

    names = [n for n in PAIRS if f"{n}_quality" in results]
    scale, unit = (60.0, "minutes") if results["config"]["budget_seconds"] >= 120 else (1.0, "seconds")
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        r = results[f"{name}_quality"]
        ours_label, tfp_label = TITLES[name]
        for key, label in (("ours", f"ours ({ours_label})"), ("tfp", tfp_label)):
            curve = r[key]["curve"]
            ax.plot([p["seconds"] / scale for p in curve], [p["bits_per_dim"] for p in curve], marker="o",
                    markersize=3, label=label)
        if r["tfp"]["final_bits_per_dim"] is not None:
            ax.axhline(r["tfp"]["final_bits_per_dim"], color="gray", linestyle=":", linewidth=1)
        if r["ours_seconds_to_tfp_final"] is not None:
            ax.axvline(r["ours_seconds_to_tfp_final"] / scale, color="gray", linestyle="--", linewidth=1,
                       label="ours reaches TFP's final")
        ax.set_xlabel(f"training {unit} (each side's own clock)")
        ax.set_ylabel(f"validation bits/dim ({r['eval_images']} images)")
        ax.set_title(f"{ours_label}: ours vs {tfp_label}, batch {r['batch']}", fontsize=9)
        ax.legend(fontsize=8)
    path = Path(out) / FIGURE
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    finally:
        plt.close(fig)
