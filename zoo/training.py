"""Training and evaluation through Keras: strategy, compile/fit, resume, evaluation.

`train` builds the model inside the chosen `tf.distribute` strategy, compiles it
with loss = mean bits/dim, and fits with Keras' own callbacks: `BackupAndRestore`
(resume; each save atomic, `zoo.backup`), `EarlyStopping` on validation bits/dim,
`ModelCheckpoint` of the best weights, `CSVLogger` (the learning curve) and
`TensorBoard`; a non-finite loss stops the run at once (`StopOnNonFiniteLoss`) with
the last good backup kept. Progress: Keras' bar on a terminal, one plain line per
epoch otherwise (`EpochLines`: a log file stays readable text); the run says why it
stopped and which epoch's weights it keeps.
"""

import csv
import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from zoo.backup import AtomicBackupAndRestore, backup_epoch
from zoo.files import remove_temporaries


def get_strategy(devices=None):
    """The `tf.distribute` strategy for this process.

    `devices` given: a `MirroredStrategy` over them (tests pass two logical CPUs).
    Else a `MultiWorkerMirroredStrategy` when `TF_CONFIG` names several workers, a
    `MirroredStrategy` over all local GPUs when there is one, else the default.
    """
    if devices:
        return tf.distribute.MirroredStrategy(devices)
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if len(cluster.get("worker", [])) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()


def set_threads(intra_op=None, inter_op=None):
    """Sizes TF's CPU thread pools; call it before TF runs anything (the pools are made once).

    `intra_op`: threads one op may split its work over; `inter_op`: ops run at a time;
    None leaves TF's choice (all cores for both). On few cores, small convolutions and
    elementwise ops gain more from running side by side than from being split: on 2 cores,
    (1, 2) made the bench's training steps (batch 16, 28x28x1) faster than TF's default by
    1.24x for PixelCNN++ (float32 and bfloat16), 1.12x and 1.40x for Glow (float32,
    bfloat16), and TFP's by 1.16x and 1.38x (one process per setting, quiet cores).
    Returns the pools' sizes now (0: TF's default).
    """
    for name, value in (("intra_op", intra_op), ("inter_op", inter_op)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be None or an int >= 1, got {value!r}.")
    try:
        if intra_op is not None:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op is not None:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as e:
        raise RuntimeError(f"set_threads(intra_op={intra_op}, inter_op={inter_op}) must run before "
                           f"TensorFlow runs its first op; it already has ({e}).") from e
    return (tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads())


IN_MEMORY_BYTES = 2**30  # training sets up to this size are held in memory


def epoch_batches(examples, batch_size, seed, first_epoch=0, shuffle_buffer=20_000):
    """An endless stream of full batches, epoch after epoch.

    `examples` holds single images, or `(image, label)` pairs (batched alike). A
    training set of at most `IN_MEMORY_BYTES` is held in memory and epoch e is
    the permutation drawn by a stateless shuffle with seed (seed, e): a run resumed
    at epoch e sees exactly the batches an uninterrupted run would. A larger one is
    streamed through a `shuffle_buffer` reshuffled each pass (resume then restores
    weights and optimizer, but not the data order). Batches are full
    (`drop_remainder`) so every step has the global batch size.
    """
    size = examples.cardinality()
    specs = tf.nest.flatten(examples.element_spec)
    nbytes = int(size) * sum(int(np.prod(s.shape)) * s.dtype.size for s in specs) if size >= 0 else -1
    if not 0 <= nbytes <= IN_MEMORY_BYTES:
        return (examples.shuffle(shuffle_buffer, seed=seed).repeat()
                .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    parts = [tf.nest.flatten(b) for b in examples.batch(8192).as_numpy_iterator()]
    arrays = tf.nest.pack_sequence_as(examples.element_spec, [np.concatenate(p) for p in zip(*parts)])
    count = sum(len(p[0]) for p in parts)
    pool = tf.data.Dataset.from_tensors(arrays).cache()

    def one_epoch(epoch, pool):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(
            tf.nest.map_structure(lambda a: tf.gather(a, order), pool)).batch(batch_size, drop_remainder=True)

    epochs = tf.data.Dataset.range(first_epoch, 2**62)
    return (tf.data.Dataset.zip(epochs, pool.repeat()).flat_map(one_epoch)
            .prefetch(tf.data.AUTOTUNE))


def model_inputs(batches):
    """Batches as Keras' `x`: `(images, labels)` pairs become one input, `((images,
    labels),)`, so `fit`/`predict` do not read the labels as targets."""
    if isinstance(batches.element_spec, tuple):
        return batches.map(lambda *pair: (pair,))
    return batches


def distributed_batches(strategy, examples, batch_size, seed, first_epoch=0):
    """`epoch_batches` split across the strategy's workers and replicas, as model inputs.

    Every worker builds the same stream of global batches and keeps its own slice,
    which its replicas split again: the update is that of the global batch on one
    device, for one process, one machine's GPUs or several machines alike.
    """
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return model_inputs(epoch_batches(examples, batch_size, seed, first_epoch))
    if batch_size % replicas:
        raise ValueError(f"The global batch_size {batch_size} must be divisible by the {replicas} replicas.")

    def pipeline(context):
        share = batch_size // context.num_input_pipelines
        start = context.input_pipeline_id * share

        def my_slice(*batch):
            return tf.nest.map_structure(lambda t: t[start:start + share], batch if len(batch) > 1 else batch[0])
        stream = epoch_batches(examples, batch_size, seed, first_epoch).map(my_slice)
        return model_inputs(stream.unbatch().batch(context.get_per_replica_batch_size(batch_size),
                                                   drop_remainder=True))
    return strategy.distribute_datasets_from_function(pipeline)


def _with_shard_policy(dataset, policy):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return dataset.with_options(options)


def worker(strategy):
    """(is_chief, task_id) of this process in a multi-worker cluster; (True, 0) otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, 0
    chief = resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())
    return chief, resolver.task_id


def read_history(path):
    """Rows of a `CSVLogger` file as dicts of floats, one per epoch (last write wins)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = {int(r["epoch"]): {k: float(v) for k, v in r.items()} for r in csv.DictReader(f)}
    return [rows[e] for e in sorted(rows)]


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' `EarlyStopping` whose best value and patience counter are rebuilt from
    the run's history when training resumes, so `--resume` stops where an
    uninterrupted run would."""

    def __init__(self, history, **kwargs):
        super().__init__(**kwargs)
        self.history_rows = history

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.history_rows and self.monitor_op is None:
            self._set_monitor_op()
        for row in self.history_rows:
            self.wait += 1
            if self.monitor in row and self._is_improvement(row[self.monitor], self.best):
                self.best, self.best_epoch, self.wait = row[self.monitor], int(row["epoch"]), 0


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` on the first batch whose loss is NaN or Inf.

    Unlike Keras' `TerminateOnNaN`, which lets the epoch end (and so lets
    `BackupAndRestore` and `CSVLogger` record the bad state), raising here aborts
    `fit` before any epoch-end callback runs: the backup, the history and the best
    checkpoint all stay at the last good epoch.
    """

    def __init__(self, run_dir):
        super().__init__()
        self.run_dir, self.epoch = run_dir, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = int(self.model.optimizer.iterations.numpy())
            raise NonFiniteLossError(
                f"Training loss became {float(loss)} at step {step} (epoch {self.epoch + 1}, "
                f"batch {batch + 1}); stopped. The last good backup and best weights stay in "
                f"{self.run_dir}: no record or pretrained weights were written.")


class StopAfterMinutes(keras.callbacks.Callback):
    """Ends `fit` at the first epoch end after which one more epoch (at the mean epoch
    time so far) would pass `minutes` of wall time since training began, so a run keeps
    a stated time budget and its best weights; in a multi-worker run the chief's
    clock decides for every worker, so all stop at the same epoch."""

    def __init__(self, minutes):
        super().__init__()
        if not minutes > 0:
            raise ValueError(f"max_minutes must be > 0, got {minutes}.")
        self.seconds = 60.0 * minutes

    def on_train_begin(self, logs=None):
        self.start, self.epochs_run, self.stopped_epoch = time.time(), 0, None

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run += 1
        elapsed = time.time() - self.start
        over = elapsed + elapsed / self.epochs_run > self.seconds
        strategy = self.model.distribute_strategy
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            vote = tf.constant(float(over and worker(strategy)[0]))
            over = bool(strategy.reduce("MAX", strategy.run(lambda: tf.identity(vote)), axis=None))
        if over:
            self.model.stop_training = True
            self.stopped_epoch = epoch


class EpochLines(keras.callbacks.Callback):
    """One plain line per epoch, for a log file (Keras' bar writes `\\r`, `\\b` and
    colour codes): `epoch 12/500  train 1.2345  validation 1.3000 bits/dim  best 1.2900
    (epoch 10)  3.1 s`. `history`: the rows of epochs already run (a resumed run)."""

    def __init__(self, epochs, history=(), print_fn=None):
        super().__init__()
        self.epochs, self.print_fn = epochs, print_fn or (lambda line: print(line, flush=True))
        self.best, self.best_epoch = _best(history)

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val = logs.get("val_loss")
        if val is not None and math.isfinite(val) and (self.best is None or val < self.best):
            self.best, self.best_epoch = val, epoch
        parts = [f"epoch {epoch + 1:>{len(str(self.epochs))}}/{self.epochs}",
                 f"train {logs.get('loss', float('nan')):.4f}"]
        if val is not None:
            parts.append(f"validation {val:.4f}")
        parts[-1] += " bits/dim"
        if self.best is not None:
            parts.append(f"best {self.best:.4f} (epoch {self.best_epoch + 1})")
        parts.append(f"{time.time() - self.start:.1f} s")
        self.print_fn("  ".join(parts))


def _best(history):
    """(lowest validation bits/dim, its 0-based epoch) of history rows; (None, None) if none."""
    rows = [r for r in history if math.isfinite(r.get("val_loss", math.nan))]
    if not rows:
        return None, None
    best = min(rows, key=lambda r: r["val_loss"])  # the first of equals, as ModelCheckpoint keeps
    return best["val_loss"], int(best["epoch"])


def _stop_reason(callbacks, epochs, history, patience, max_minutes):
    """Why `fit` ended, in words."""
    ran = int(history[-1]["epoch"]) + 1 if history else 0
    for cb in callbacks:
        if isinstance(cb, ResumableEarlyStopping) and cb.stopped_epoch:
            return (f"Early stopping: validation bits/dim did not improve for {patience} epochs; "
                    f"stopped after epoch {ran} of {epochs}.")
        if isinstance(cb, StopAfterMinutes) and cb.stopped_epoch is not None and ran < epochs:
            return (f"Time budget: another epoch would pass max_minutes={max_minutes}; stopped "
                    f"after epoch {ran} of {epochs}.")
    return f"Trained {ran} of {epochs} epochs."


@keras.saving.register_keras_serializable(package="zoo")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate * min(1, (step + 1) / warmup_steps) * decay^step`: a linear warm-up
    (openai/glow's `epochs_warmup`) under a per-step exponential decay."""

    def __init__(self, learning_rate, warmup_steps, decay=1.0):
        if int(warmup_steps) < 1 or not 0.0 < float(decay) <= 1.0:
            raise ValueError(f"warmup_steps must be >= 1 and decay in (0, 1], got {warmup_steps}, "
                             f"{decay}.")
        self.learning_rate, self.warmup_steps = float(learning_rate), int(warmup_steps)
        self.decay = float(decay)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        ramp = tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return self.learning_rate * ramp * tf.pow(self.decay, step)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps,
                "decay": self.decay}


def make_optimizer(name="adam", learning_rate=1e-3, decay=None, ema=None, clipnorm=None,
                   beta_1=None, beta_2=None, weight_decay=None, warmup=None, global_clipnorm=None):
    """A Keras optimizer by name; `decay` is a per-step exponential learning-rate
    decay, `warmup` steps of linear warm-up before it (`WarmupExponentialDecay`), `ema`
    the momentum of Polyak averaging through the optimizer's `use_ema`, `beta_1`/`beta_2`
    the Adam-family moment decays (Keras' defaults when None), `weight_decay` Keras'
    decoupled decay (each step `w -= learning_rate * weight_decay * w`), `clipnorm` /
    `global_clipnorm` Keras' gradient clipping (each variable's norm / all of them
    together)."""
    optimizers = {"adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax,
                  "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop}
    if name not in optimizers:
        raise ValueError(f"Unknown optimizer {name!r}; expected one of {sorted(optimizers)}.")
    lr = learning_rate
    if warmup is not None:
        lr = WarmupExponentialDecay(learning_rate, warmup, 1.0 if decay is None else decay)
    elif decay is not None:
        lr = keras.optimizers.schedules.ExponentialDecay(learning_rate, 1, decay)
    kwargs = {"use_ema": ema is not None, "ema_momentum": ema if ema is not None else 0.99}
    kwargs.update({k: v for k, v in (("beta_1", beta_1), ("beta_2", beta_2), ("weight_decay", weight_decay),
                                     ("clipnorm", clipnorm), ("global_clipnorm", global_clipnorm))
                   if v is not None})
    return optimizers[name](learning_rate=lr, **kwargs)


def train(build_model, train_images, val_images, *, num_train, run_dir, epochs, batch_size,
          optimizer=None, patience=None, seed=0, resume=False, strategy=None,
          jit_compile="auto", verbose="auto", callbacks=(), max_minutes=None):
    """Fits `build_model()` on `train_images` (a dataset of single uint8 images, or of
    `(image, label)` pairs for a class-conditional model).

    Args:
      build_model: zero-argument callable returning an unbuilt `DensityModel`;
        called inside the strategy's scope.
      train_images, val_images: unbatched datasets of images (or pairs).
      num_train: images in `train_images` (sets the steps per epoch).
      run_dir: folder for the backup, best weights, history CSV and TensorBoard logs.
      epochs, batch_size: the global batch, split across replicas.
      optimizer: kwargs of `make_optimizer`.
      patience: epochs without a better validation loss before stopping (None: never).
      max_minutes: wall-time budget of this call's training (None: none); see
        `StopAfterMinutes`.
      resume: continue from `run_dir`'s backup; otherwise `run_dir` starts empty.
      verbose: "auto" (Keras' progress bar when stdout is a terminal, else one plain line
        per epoch), 0 (silent), or Keras' 1 (bar) / 2 (a line per epoch).
      strategy: the `tf.distribute` strategy (default `get_strategy()`); in a
        multi-worker cluster, workers other than the chief keep their backup and logs
        in `run_dir-worker<id>`.
    Returns:
      (model with the best validation weights, list of per-epoch history rows).
    """
    strategy = strategy or get_strategy()
    chief, task_id = worker(strategy)
    if not chief:
        run_dir = f"{run_dir}-worker{task_id}"
    if not resume and os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    remove_temporaries(run_dir)  # a kill inside a save of the best weights leaves one
    backup_dir = os.path.join(run_dir, "backup")
    history_path = os.path.join(run_dir, "history.csv")
    best_path = os.path.join(run_dir, "best.weights.h5")
    steps = num_train // batch_size
    if steps < 1:
        raise ValueError(f"batch_size {batch_size} exceeds the {num_train} training images.")

    keras.utils.set_random_seed(seed)
    with strategy.scope():
        model = build_model().build_for_images()
        model.compile(optimizer=make_optimizer(**(optimizer or {})), jit_compile=jit_compile)

    history = read_history(history_path) if resume else []
    first_epoch = backup_epoch(backup_dir) if resume else 0
    history = [r for r in history if r["epoch"] < first_epoch]
    best = min((r["val_loss"] for r in history if "val_loss" in r), default=None)
    use_ema = model.optimizer.use_ema
    plain = verbose == "auto" and not sys.stdout.isatty()
    if verbose == "auto":
        verbose = 0 if plain else 1
    say = print if verbose or plain else (lambda *a, **k: None)
    resuming = f", resuming at epoch {first_epoch + 1}" if first_epoch else ""
    say(f"Training {type(model).__name__} ({model.count_params():,} parameters): up to {epochs} "
        f"epochs of {steps} steps, global batch {batch_size}{resuming}. Loss: bits/dim "
        f"(loss: training, val_loss: validation; lower is better).", flush=True)
    cbs = [
        keras.callbacks.CSVLogger(history_path, append=bool(history)),
        StopOnNonFiniteLoss(run_dir),
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if use_ema else []),
        keras.callbacks.ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True,
                                        save_weights_only=True, initial_value_threshold=best),
        *([ResumableEarlyStopping(history, monitor="val_loss", patience=patience)] if patience else []),
        *([StopAfterMinutes(max_minutes)] if max_minutes else []),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), profile_batch=0),
        *callbacks,
        AtomicBackupAndRestore(backup_dir),  # after the others: it saves their state
        *([EpochLines(epochs, history)] if plain else []),  # an epoch's line: all of it saved
    ]
    model.fit(
        distributed_batches(strategy, train_images, batch_size, seed, first_epoch),
        steps_per_epoch=steps, epochs=epochs,
        validation_data=_with_shard_policy(model_inputs(val_images.batch(batch_size).cache()),
                                           tf.data.experimental.AutoShardPolicy.DATA),
        callbacks=cbs, verbose=verbose, shuffle=False,
    )
    history = read_history(history_path)
    say(_stop_reason(cbs, epochs, history, patience, max_minutes), flush=True)
    best, best_epoch = _best(history)
    if os.path.exists(best_path):
        model.load_weights(best_path)
    if os.path.exists(best_path) and best is not None:
        say(f"Keeping the weights of epoch {best_epoch + 1}, the best validation bits/dim "
            f"({best:.4f}){' (Polyak-averaged)' if use_ema else ''}.", flush=True)
    else:
        say("No epoch improved the validation bits/dim: keeping the last epoch's weights.", flush=True)
    return model, history


def evaluate(model, images, batch_size):
    """Test log-likelihood over every image of `images` (or `(image, label)` pairs)
    exactly once.

    Returns a dict: `images` (count), `nats` and `bits_per_dim` (means per image).
    Runs `model.predict`, which splits batches across a `MirroredStrategy`'s
    replicas and keeps a final partial batch. Across workers Keras' gather pads
    partial batches, so there each worker evaluates the whole split on its own
    device (reading its local copy of the mirrored variables) and all agree.
    """
    batches = model_inputs(images.batch(batch_size))
    if isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        step = tf.function(lambda batch: model(batch[0] if isinstance(batch, tuple) else batch))
        bpd = np.concatenate([step(b).numpy() for b in batches])
    else:
        bpd = model.predict(batches, verbose=0)
    bpd = np.asarray(bpd, np.float64).reshape(-1)
    if not np.all(np.isfinite(bpd)):
        raise FloatingPointError(f"{int(np.sum(~np.isfinite(bpd)))} test images have non-finite bits/dim.")
    nats = bpd * model.num_dims * math.log(2.0)
    return {"images": int(bpd.size), "nats": float(nats.mean()), "bits_per_dim": float(bpd.mean())}
