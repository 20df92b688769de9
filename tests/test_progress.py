"""What `zoo.training.train` prints when stdout is not a terminal: the unit, one plain line
per epoch, why training stopped and which epoch's weights it keeps."""

import numpy as np
import tensorflow as tf

from zoo import training
from zoo.models import ARM


def small_arm():
    return ARM(image_shape=(4, 4, 1), num_levels=3, filters=4, kernel_size=2, dilations=[1])


def images(n, seed):
    return tf.data.Dataset.from_tensor_slices(
        np.random.default_rng(seed).integers(0, 3, (n, 4, 4, 1)).astype(np.uint8))


def fit(tmp_path, **kwargs):
    return training.train(small_arm, images(32, 1), images(16, 2), num_train=32, run_dir=str(tmp_path),
                          batch_size=16, **kwargs)


def test_plain_lines_name_the_unit_and_the_kept_epoch(tmp_path, capsys):
    _, history = fit(tmp_path, epochs=3, optimizer={"learning_rate": 1e-2})
    out = capsys.readouterr().out
    assert "\r" not in out and "\b" not in out and "\x1b[" not in out
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all("bits/dim" in line and "train " in line and "validation " in line for line in lines)
    assert f"validation {history[-1]['val_loss']:.4f} bits/dim" in lines[-1]
    best = int(np.argmin([r["val_loss"] for r in history]))
    assert "Loss: bits/dim" in out and "Trained 3 of 3 epochs." in out
    assert f"Keeping the weights of epoch {best + 1}, the best validation bits/dim" in out


def test_early_stopping_is_announced_with_the_epoch_kept(tmp_path, capsys):
    # A zero learning rate never improves on epoch 1: patience 2 stops after epoch 3.
    fit(tmp_path, epochs=20, patience=2, optimizer={"learning_rate": 0.0})
    out = capsys.readouterr().out
    assert ("Early stopping: validation bits/dim did not improve for 2 epochs; stopped after epoch 3 "
            "of 20.") in out
    assert "Keeping the weights of epoch 1, the best validation bits/dim" in out


def test_the_time_budget_is_announced(tmp_path, capsys):
    fit(tmp_path, epochs=20, max_minutes=1e-6)
    out = capsys.readouterr().out
    assert "Time budget: another epoch would pass max_minutes=1e-06; stopped after epoch 1 of 20." in out


def test_verbose_0_prints_nothing(tmp_path, capsys):
    fit(tmp_path, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
