"""`train` (data-dependent initialization, compile, fit with the callbacks, the best
weights kept) and `evaluate` (a test split's bits/dim, every image once)."""

import math
import os
import shutil
import sys

import keras
import numpy as np
import tensorflow as tf

from zoo.training.backup import AtomicBackupAndRestore, backup_epoch, backup_seconds
from zoo.files import remove_temporaries
from zoo.training.callbacks import (EpochLines, ResumableEarlyStopping, StopAfterMinutes, StopOnNonFiniteLoss,
                                    TrainingInterrupted, best_epoch, keep_history_before, read_history,
                                    stop_reason)
from zoo.training.optimizer import make_optimizer
from zoo.training.pipeline import distributed_batches, model_inputs, with_shard_policy
from zoo.training.strategy import get_strategy, worker


def count_parameters(model):
    """The model's parameters as papers count them: the entries of its trainable variables
    (not batch-norm statistics, actnorm's initialized flags or random-number states). The
    model must be built."""
    return int(sum(math.prod(v.shape) for v in model.trainable_weights))


def initialize(model, strategy, batches):
    """The model's data-dependent initialization (`DensityModel.initialize`) on the first
    batch of `batches` (distributed model inputs), in every replica: statistics are
    all-reduced, so all replicas set the values of the global batch. A resumed run's
    backup then restores the trained weights over them."""
    def step(batch):
        images, labels = batch[0] if isinstance(batch, tuple) else (batch, None)
        model.initialize(images, labels)
    strategy.run(tf.function(step), args=(next(iter(batches)),))


def train(build_model, train_images, val_images, *, num_train, run_dir, epochs, batch_size,
          optimizer=None, patience=None, seed=0, resume=False, strategy=None,
          jit_compile="auto", verbose="auto", callbacks=(), max_minutes=None, perturbation=None):
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
      max_minutes: wall-time budget of the training (None: none), a resumed run's
        earlier processes included; see `StopAfterMinutes`.
      perturbation: fraction of training pixels replaced by uniform random levels in
        every batch (Ren et al. 2019's background model; `pipeline.perturb`), or None.
      resume: continue from `run_dir`'s backup (with none there, say so and start from
        scratch); otherwise `run_dir` starts empty.
      verbose: "auto" (Keras' progress bar when stdout is a terminal, else one plain line
        per epoch), 0 (silent), or Keras' 1 (bar) / 2 (a line per epoch).
      strategy: the `tf.distribute` strategy (default `get_strategy()`); in a
        multi-worker cluster, workers other than the chief keep their backup and logs
        in `run_dir-worker<id>`.
    Returns:
      (model with the best validation weights, list of per-epoch history rows).
    Raises:
      TrainingInterrupted (a `KeyboardInterrupt`) on Ctrl-C, naming the epochs backed up.
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

    if perturbation is not None and not 0.0 < perturbation < 1.0:
        raise ValueError(f"perturbation must be a fraction in (0, 1), got {perturbation!r}.")
    perturb = None if perturbation is None else (perturbation, model.num_levels)
    initialize(model, strategy, distributed_batches(strategy, train_images, batch_size, seed, 0, perturb))
    history = read_history(history_path) if resume else []
    first_epoch = backup_epoch(backup_dir) if resume else 0
    spent = backup_seconds(backup_dir) if resume else 0.0  # 0: also a backup older than its `seconds`
    history = [r for r in history if r["epoch"] < first_epoch]
    keep_history_before(history_path, first_epoch)  # the epochs after the backup's run again
    best = min((r["val_loss"] for r in history if "val_loss" in r), default=None)
    use_ema = model.optimizer.use_ema
    plain = verbose == "auto" and not sys.stdout.isatty()
    if verbose == "auto":
        verbose = 0 if plain else 1
    say = print if verbose or plain else (lambda *a, **k: None)
    if resume and not first_epoch:  # e.g. a mistyped run_dir
        say(f"Nothing to resume: no backup in {backup_dir}; training from scratch.", flush=True)
    resuming = f", resuming at epoch {first_epoch + 1}" if first_epoch else ""
    say(f"Training {type(model).__name__} ({count_parameters(model):,} parameters): up to {epochs} "
        f"epochs of {steps} steps, global batch {batch_size}{resuming}. Loss: bits/dim "
        f"(loss: training, val_loss: validation; lower is better).", flush=True)
    csv_logger = keras.callbacks.CSVLogger(history_path, append=bool(history))
    cbs = [
        csv_logger,
        StopOnNonFiniteLoss(run_dir),
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if use_ema else []),
        keras.callbacks.ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True,
                                        save_weights_only=True, initial_value_threshold=best),
        *([ResumableEarlyStopping(history, monitor="val_loss", patience=patience)] if patience else []),
        *([StopAfterMinutes(max_minutes, spent, first_epoch if spent else 0)] if max_minutes else []),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), profile_batch=0),
        *callbacks,
        AtomicBackupAndRestore(backup_dir),  # after the others: it saves their state
        *([EpochLines(epochs, history)] if plain else []),  # an epoch's line: all of it saved
    ]
    try:
        model.fit(
            distributed_batches(strategy, train_images, batch_size, seed, first_epoch, perturb),
            steps_per_epoch=steps, epochs=epochs,
            validation_data=with_shard_policy(model_inputs(val_images.batch(batch_size).cache()),
                                               tf.data.experimental.AutoShardPolicy.DATA),
            callbacks=cbs, verbose=verbose, shuffle=False,
        )
    except KeyboardInterrupt as e:
        raise TrainingInterrupted(backup_epoch(backup_dir), backup_dir) from e
    finally:  # Keras closes the history file only when `fit` ends normally
        if csv_logger.csv_file is not None:
            csv_logger.csv_file.close()
    history = read_history(history_path)
    say(stop_reason(cbs, epochs, history, patience, max_minutes), flush=True)
    best, best_at = best_epoch(history)
    if os.path.exists(best_path):
        model.load_weights(best_path)
    if os.path.exists(best_path) and best is not None:
        say(f"Keeping the weights of epoch {best_at + 1}, the best validation bits/dim "
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
