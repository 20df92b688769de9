"""Interruptions, non-finite losses and tampered files: nothing half-done survives."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduce.__main__ import main
from zoo import hub, training
from zoo.models import ARM


class InjectNaN(keras.callbacks.Callback):
    """Poisons one weight before a given (epoch, batch), as a diverging run would."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            v = self.model.trainable_variables[0]
            v.assign(tf.fill(v.shape, float("nan")))


def test_non_finite_loss_stops_at_its_step_and_keeps_the_last_good_state(tmp_path):
    data = tf.data.Dataset.from_tensor_slices(
        np.random.default_rng(0).integers(0, 3, (64, 4, 4, 1)).astype(np.uint8))
    build = lambda: ARM(image_shape=(4, 4, 1), num_levels=3, filters=8, dilations=[1, 2])  # noqa: E731
    with pytest.raises(training.NonFiniteLossError, match=r"at step 7 \(epoch 2, batch 3\)"):
        training.train(build, data, data, num_train=64, run_dir=str(tmp_path), epochs=3, batch_size=16,
                       verbose=0, callbacks=[InjectNaN(epoch=1, batch=2)])
    assert [r["epoch"] for r in training.read_history(tmp_path / "history.csv")] == [0]
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    best = build().build_for_images()
    best.load_weights(tmp_path / "best.weights.h5")
    assert all(np.all(np.isfinite(w)) for w in best.get_weights())


def test_driver_writes_no_record_when_the_loss_diverges(tmp_path, monkeypatch):
    real_train = training.train

    def poisoned(*args, **kwargs):
        return real_train(*args, callbacks=[InjectNaN(epoch=0, batch=5)], **kwargs)

    monkeypatch.setattr(training, "train", poisoned)
    with pytest.raises(training.NonFiniteLossError, match="step 6"):
        main(["arm", "--preset", "smoke", "--out", str(tmp_path)])
    assert not (tmp_path / "runs").exists() and not (tmp_path / "figures").exists()
    assert not (tmp_path / "README.md").exists()


def run_smoke(paper, out, *extra, kill_at_epoch=None):
    """`python -m reproduce PAPER --preset smoke`; with `kill_at_epoch`, SIGKILLed at a random
    moment once that epoch has begun."""
    cmd = [sys.executable, "-u", "-m", "reproduce", paper, "--preset", "smoke", "--epochs", "4",
           "--out", str(out), *extra]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if kill_at_epoch is None:
        subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=300)
        return
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    seen = b""
    while f"epoch {kill_at_epoch - 1}/4".encode() not in seen:  # its line: the next epoch begins
        chunk = proc.stdout.read1(4096)
        assert chunk, f"run ended before epoch {kill_at_epoch}: {seen[-2000:]!r}"
        seen += chunk
    time.sleep(random.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def final_weights(paper, out):
    record = json.loads((out / "runs" / paper / "smoke-digits.json").read_text())
    model = hub.build(record["model"], record["config"]).build_for_images()
    model.load_weights(out / "work" / paper / "smoke-digits" / "best.weights.h5")
    return model.get_weights()


@pytest.mark.parametrize("paper", ["arm", "glow"])
def test_sigkilled_run_resumes_to_the_same_weights_and_one_clean_record(tmp_path, paper):
    run_smoke(paper, tmp_path / "straight")
    run_smoke(paper, tmp_path / "killed", kill_at_epoch=3)
    assert not (tmp_path / "killed" / "runs").exists(), "a killed run wrote a record"
    run_smoke(paper, tmp_path / "killed", "--resume")
    for a, b in zip(final_weights(paper, tmp_path / "straight"), final_weights(paper, tmp_path / "killed")):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    records = list((tmp_path / "killed").glob("runs/*/*.json"))
    assert len(records) == 1
    straight = json.loads((tmp_path / "straight" / "runs" / paper / "smoke-digits.json").read_text())
    resumed = json.loads(records[0].read_text())
    assert abs(straight["test_nats"] - resumed["test_nats"]) < 1e-4
    assert [h["val_bits_per_dim"] for h in straight["history"]] == pytest.approx(
        [h["val_bits_per_dim"] for h in resumed["history"]], rel=1e-6)
    leftovers = [p for p in (tmp_path / "killed").rglob(".*") if p.is_file()]
    assert not leftovers, f"half-written files left: {leftovers}"
    assert not (tmp_path / "killed" / "work" / paper / "smoke-digits" / "backup").exists()


def test_keras_files_with_unknown_classes_or_lambdas_are_refused(tmp_path):
    inputs = keras.Input((4,))
    lam = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="[Ll]ambda|safe_mode"):
        keras.saving.load_model(tmp_path / "lambda.keras", safe_mode=True)

    model = ARM(image_shape=(4, 4, 1), num_levels=3, filters=4, dilations=[1]).build_for_images()
    model.save(tmp_path / "arm.keras")
    import zipfile

    with zipfile.ZipFile(tmp_path / "arm.keras") as src:
        files = {n: src.read(n) for n in src.namelist()}
    config = json.loads(files["config.json"])
    config["class_name"], config["registered_name"] = "NotAModel", "zoo>NotAModel"
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "unknown.keras", "w") as dst:
        for n, b in files.items():
            dst.writestr(n, b)
    with pytest.raises(TypeError, match="NotAModel"):
        keras.saving.load_model(tmp_path / "unknown.keras", safe_mode=True)
