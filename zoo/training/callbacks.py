"""The Keras callbacks `train` adds to Keras' own (resumable early stopping, a
non-finite-loss stop, a wall-time budget, plain epoch lines) and the words it ends with."""

import csv
import math
import os
import time

import keras
import tensorflow as tf

from zoo.files import write_text
from zoo.training.strategy import worker


def read_history(path):
    """Rows of a `CSVLogger` file as dicts of floats, one per epoch (last write wins)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = {int(r["epoch"]): {k: float(v) for k, v in r.items()} for r in csv.DictReader(f)}
    return [rows[e] for e in sorted(rows)]


def keep_history_before(path, epochs):
    """Keeps the header and the rows of epochs `< epochs` (0-based) of a `CSVLogger` file,
    rewritten atomically: a resumed run trains the later epochs again, and appends one row
    for each."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        lines = f.readlines()
    kept = lines[:1] + [line for line in lines[1:] if line.strip() and int(line.split(",", 1)[0]) < epochs]
    if kept != lines:
        write_text(path, "".join(kept))


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


class TrainingInterrupted(KeyboardInterrupt):
    """`train` was interrupted (Ctrl-C); `epochs` epochs are backed up in `backup_dir`
    (each backup is atomic, so an interrupt inside a save keeps the previous one) and
    `train(..., resume=True)` continues after them."""

    def __init__(self, epochs, backup_dir):
        self.epochs, self.backup_dir = epochs, backup_dir
        super().__init__(self.describe())

    def describe(self):
        if not self.epochs:
            return "Interrupted during epoch 1, before its backup: nothing to resume"
        return (f"Interrupted during epoch {self.epochs + 1}: the backup of epoch {self.epochs} "
                f"in {self.backup_dir} is safe")


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
    clock decides for every worker, so all stop at the same epoch. A resumed run passes
    the `spent_seconds` its first `spent_epochs` took (`zoo.training.backup.backup_seconds`), so
    the budget covers the whole training, not each process."""

    def __init__(self, minutes, spent_seconds=0.0, spent_epochs=0):
        super().__init__()
        if not minutes > 0:
            raise ValueError(f"max_minutes must be > 0, got {minutes}.")
        if spent_seconds < 0 or spent_epochs < 0:
            raise ValueError(f"spent_seconds and spent_epochs must be >= 0, got {spent_seconds}, {spent_epochs}.")
        self.seconds, self.spent_seconds, self.spent_epochs = 60.0 * minutes, spent_seconds, spent_epochs

    def on_train_begin(self, logs=None):
        self.start, self.epochs_run, self.stopped_epoch = time.time(), 0, None

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_run += 1
        elapsed = self.spent_seconds + time.time() - self.start
        over = elapsed + elapsed / (self.spent_epochs + self.epochs_run) > self.seconds
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
        self.best, self.best_epoch = best_epoch(history)

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


def best_epoch(history):
    """(lowest validation bits/dim, its 0-based epoch) of history rows; (None, None) if none."""
    rows = [r for r in history if math.isfinite(r.get("val_loss", math.nan))]
    if not rows:
        return None, None
    best = min(rows, key=lambda r: r["val_loss"])  # the first of equals, as ModelCheckpoint keeps
    return best["val_loss"], int(best["epoch"])


def stop_reason(callbacks, epochs, history, patience, max_minutes):
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
