"""`BackupAndRestore` whose every save is all-or-nothing, so a killed run always resumes."""

import json
import os
import time

import keras

from zoo.files import atomic_write, remove_temporaries, write_json

METADATA = "training_metadata.json"  # the file Keras' `BackupAndRestore` reads


def backup_epoch(backup_dir):
    """The epoch a resume from `backup_dir` starts at (0 when there is no backup)."""
    metadata = _read_metadata(backup_dir)
    return int(metadata["epoch"]) if metadata else 0


def backup_seconds(backup_dir):
    """The training seconds the backed-up epochs took, over every process that ran them
    (0 when there is no backup), so a resumed run keeps its time budget and its record
    states its whole training time."""
    metadata = _read_metadata(backup_dir)
    return float(metadata.get("seconds", 0.0)) if metadata else 0.0


def _read_metadata(backup_dir):
    path = os.path.join(backup_dir, METADATA)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore` (save every epoch, resume on `fit`), saved atomically.

    Keras writes `latest.weights.h5` in place and then `training_metadata.json`: a
    process killed inside the first write leaves an HDF5 file no resume can open, and
    one killed between the two resumes epoch N+1's weights as if they were epoch N's.
    Here save N writes `epoch-N.weights.h5` whole (temporary name, fsync, rename), then
    replaces the metadata with `{"epoch": N, "weights": "epoch-N.weights.h5"}` the same
    way, then deletes the older weights: at every instant the metadata names a complete
    file of its own epoch. The metadata also keeps `seconds`, the training time so far
    (the resumed backup's plus this process's since `fit` began).
    """

    def on_train_begin(self, logs=None):
        if os.path.isdir(self.backup_dir):
            remove_temporaries(self.backup_dir)
        metadata = _read_metadata(self.backup_dir)
        if metadata and "weights" in metadata:
            self._weights_path = os.path.join(self.backup_dir, metadata["weights"])
            if not os.path.exists(self._weights_path):
                raise FileNotFoundError(
                    f"{METADATA} in {self.backup_dir} names {metadata['weights']}, which is "
                    "missing: this backup cannot resume; start the run without resuming.")
        self._seconds_before, self._began = backup_seconds(self.backup_dir), time.time()
        super().on_train_begin(logs)

    def _save_model(self):
        name = f"epoch-{self._current_epoch}.weights.h5"
        # Keras' own save under our one temporary (a model's atomic `save_weights`, as
        # `DensityModel`'s, would add a second temporary and fsync)
        atomic_write(os.path.join(self.backup_dir, name),
                     lambda tmp: keras.Model.save_weights(self.model, tmp))
        write_json(os.path.join(self.backup_dir, METADATA),
                   {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name,
                    "seconds": round(self._seconds_before + time.time() - self._began, 3)})
        self._weights_path = os.path.join(self.backup_dir, name)
        for old in os.listdir(self.backup_dir):
            if old.endswith(".weights.h5") and old != name:
                os.remove(os.path.join(self.backup_dir, old))
