import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo.training.backup
from zoo import training
from zoo.models import ARM


def small_arm(dropout=0.0):
    return ARM(image_shape=(4, 4, 1), num_levels=3, filters=8, kernel_size=3, dilations=[1, 2],
               residual=True, dropout=dropout, position_embedding=True)


def images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 3, (n, 4, 4, 1)).astype(np.uint8)


def one_step(strategy, weights, batch):
    with strategy.scope():
        model = small_arm().build_for_images()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
    ds = tf.data.Dataset.from_tensor_slices(batch).batch(len(batch))
    logs = model.fit(ds, epochs=1, verbose=0, shuffle=False)
    return logs.history["loss"][0], model.get_weights()


def test_mirrored_step_on_two_devices_equals_one_device(two_cpus):
    init = small_arm().build_for_images().get_weights()
    batch = images(16)
    loss_1, weights_1 = one_step(tf.distribute.get_strategy(), init, batch)
    mirrored = training.get_strategy(devices=two_cpus)
    assert mirrored.num_replicas_in_sync == 2
    loss_2, weights_2 = one_step(mirrored, init, batch)
    assert abs(loss_1 - loss_2) < 1e-5
    for a, b in zip(weights_1, weights_2):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert any(not np.allclose(a, b) for a, b in zip(init, weights_1)), "the step changed nothing"


def test_evaluation_sees_every_image_once_under_mirrored(two_cpus):
    with training.get_strategy(devices=two_cpus).scope():
        model = small_arm().build_for_images()
    data = images(447, seed=3)  # digits' test size: batch 64 does not divide it
    result = training.evaluate(model, tf.data.Dataset.from_tensor_slices(data), batch_size=64)
    assert result["images"] == 447
    expected = model.bits_per_dim(data).numpy().mean()
    assert abs(result["bits_per_dim"] - expected) < 1e-5
    assert abs(result["nats"] - expected * 16 * np.log(2)) < 1e-3


def test_epoch_batches_order_depends_only_on_seed_and_epoch():
    data = tf.data.Dataset.from_tensor_slices(np.arange(10, dtype=np.int32))
    stream = training.epoch_batches(data, 5, seed=7)
    first_three = [b.numpy().tolist() for b in stream.take(6)]
    resumed = [b.numpy().tolist() for b in training.epoch_batches(data, 5, seed=7, first_epoch=2).take(2)]
    assert resumed == first_three[4:6]
    epochs = [sorted(first_three[i] + first_three[i + 1]) for i in (0, 2, 4)]
    assert all(e == list(range(10)) for e in epochs), "each epoch is a permutation"
    assert first_three[0:2] != first_three[2:4]


class Interrupt(keras.callbacks.Callback):
    """Raises mid-epoch, as a killed process would stop: no on_train_end, no cleanup."""

    def __init__(self, epoch, step):
        super().__init__()
        self.at, self.epoch = (epoch, step), 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("simulated interruption")


def test_resumed_run_ends_with_the_same_weights(tmp_path):
    train = tf.data.Dataset.from_tensor_slices(images(96, seed=1))
    val = tf.data.Dataset.from_tensor_slices(images(32, seed=2))
    kwargs = dict(num_train=96, epochs=4, batch_size=16, optimizer={"learning_rate": 1e-2},
                  patience=3, seed=5, verbose=0)
    build = lambda: small_arm(dropout=0.3)  # noqa: E731  (dropout: its RNG state must resume too)
    reference, ref_history = training.train(build, train, val, run_dir=str(tmp_path / "a"), **kwargs)
    with pytest.raises(KeyboardInterrupt):
        training.train(build, train, val, run_dir=str(tmp_path / "b"),
                       callbacks=[Interrupt(epoch=2, step=3)], **kwargs)
    resumed, history = training.train(build, train, val, run_dir=str(tmp_path / "b"), resume=True, **kwargs)
    assert [r["epoch"] for r in history] == [0, 1, 2, 3]
    np.testing.assert_allclose([r["val_loss"] for r in history], [r["val_loss"] for r in ref_history],
                               rtol=1e-6)
    for a, b in zip(reference.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


class Killed(BaseException):
    """A kill: nothing catches it and no `finally` of ours cleans up after it."""


@pytest.mark.parametrize("target, hit", [("epoch-2.weights.h5", 1), ("training_metadata.json", 2),
                                         ("best.weights.h5", 2)])
def test_a_kill_inside_any_save_resumes_to_the_same_weights(tmp_path, monkeypatch, target, hit):
    """Killed at the rename that would land `target` for the `hit`-th time, with its
    temporary half-written on disk: the backup of epoch 2's weights, the metadata that
    names them (Keras' own `BackupAndRestore` would then resume epoch 2's weights as
    epoch 1's), or the best weights. The resume must end where the straight run did."""
    train = tf.data.Dataset.from_tensor_slices(images(64, seed=1))
    val = tf.data.Dataset.from_tensor_slices(images(32, seed=2))
    kwargs = dict(num_train=64, epochs=4, batch_size=16, optimizer={"learning_rate": 1e-2}, seed=5,
                  verbose=0)
    reference, ref_history = training.train(small_arm, train, val, run_dir=str(tmp_path / "a"), **kwargs)
    real_replace, seen = os.replace, []

    def replace_then_die(src, dst):
        if os.path.basename(dst) == target:
            seen.append(dst)
            if len(seen) == hit:
                torn = f"{src}.torn"
                shutil.copy(src, torn)
                with open(torn, "r+b") as f:
                    f.truncate(os.path.getsize(torn) // 2)
                raise Killed(dst)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(Killed):
        training.train(small_arm, train, val, run_dir=str(tmp_path / "b"), **kwargs)
    monkeypatch.setattr(os, "replace", real_replace)
    assert list((tmp_path / "b").rglob("*.torn")), "the kill left no torn temporary"
    resumed, history = training.train(small_arm, train, val, run_dir=str(tmp_path / "b"), resume=True,
                                      **kwargs)
    np.testing.assert_allclose([r["val_loss"] for r in history], [r["val_loss"] for r in ref_history],
                               rtol=1e-6)
    for a, b in zip(reference.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not [p for p in (tmp_path / "b").rglob(".*") if p.is_file()], "temporaries left"


def test_a_backup_whose_weights_are_gone_refuses_to_resume(tmp_path):
    data = tf.data.Dataset.from_tensor_slices(images(32))
    kwargs = dict(num_train=32, epochs=3, batch_size=16, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        training.train(small_arm, data, data, run_dir=str(tmp_path),
                       callbacks=[Interrupt(epoch=2, step=0)], **kwargs)
    (tmp_path / "backup" / "epoch-2.weights.h5").unlink()
    with pytest.raises(FileNotFoundError, match="names epoch-2.weights.h5, which is missing"):
        training.train(small_arm, data, data, run_dir=str(tmp_path), resume=True, **kwargs)


def test_strategy_choice_reads_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert training.get_strategy().num_replicas_in_sync == 1
    assert isinstance(training.get_strategy(devices=["/cpu:0", "/cpu:1"]), tf.distribute.MirroredStrategy)


def test_unknown_optimizer_and_oversized_batch_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown optimizer 'sgdd'"):
        training.make_optimizer("sgdd")
    data = tf.data.Dataset.from_tensor_slices(images(8))
    with pytest.raises(ValueError, match="batch_size 16 exceeds the 8 training images"):
        training.train(small_arm, data, data, num_train=8, run_dir=str(tmp_path), epochs=1, batch_size=16)


def test_training_on_two_replicas_follows_the_one_device_run(tmp_path, two_cpus):
    train = tf.data.Dataset.from_tensor_slices(images(64, seed=1))
    val = tf.data.Dataset.from_tensor_slices(images(20, seed=2))
    kwargs = dict(num_train=64, epochs=2, batch_size=16, optimizer={"learning_rate": 1e-2}, seed=3,
                  verbose=0)
    one, h1 = training.train(small_arm, train, val, run_dir=str(tmp_path / "one"), **kwargs)
    two, h2 = training.train(small_arm, train, val, run_dir=str(tmp_path / "two"),
                             strategy=training.get_strategy(devices=two_cpus), **kwargs)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose([r[key] for r in h1], [r[key] for r in h2], rtol=1e-5)
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)



class MinuteEpochs(keras.callbacks.Callback):
    """A fake clock for the time budget (`zoo.training.callbacks.time`): every epoch takes
    exactly one minute."""

    def __init__(self):
        super().__init__()
        self.now = 0.0

    def time(self):
        return self.now

    def on_epoch_begin(self, epoch, logs=None):
        self.now += 60.0


def test_time_budget_stops_before_an_epoch_would_pass_it(tmp_path, monkeypatch):
    clock = MinuteEpochs()
    monkeypatch.setattr(training.callbacks, "time", clock)
    train = tf.data.Dataset.from_tensor_slices(images(32, seed=1))
    val = tf.data.Dataset.from_tensor_slices(images(16, seed=2))
    # One-minute epochs, a 2.5-minute budget: after 2 epochs a third would pass it, so
    # training stops there with the history and best weights of 2 epochs.
    _, history = training.train(small_arm, train, val, num_train=32, run_dir=str(tmp_path), epochs=10,
                                batch_size=16, verbose=0, callbacks=[clock], max_minutes=2.5)
    assert [r["epoch"] for r in history] == [0, 1]
    with pytest.raises(ValueError, match="max_minutes must be > 0"):
        training.StopAfterMinutes(0)


class FailAtEpoch(keras.callbacks.Callback):
    """Kills the run (an exception) as epoch `epoch` begins, after the backups before it."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_time_budget_counts_the_minutes_before_a_resume(tmp_path, monkeypatch):
    clock = MinuteEpochs()
    monkeypatch.setattr(training.callbacks, "time", clock)
    monkeypatch.setattr(zoo.training.backup, "time", clock)
    train = tf.data.Dataset.from_tensor_slices(images(32, seed=1))
    val = tf.data.Dataset.from_tensor_slices(images(16, seed=2))
    run = dict(num_train=32, run_dir=str(tmp_path), epochs=10, batch_size=16, verbose=0, max_minutes=2.5)
    with pytest.raises(KeyboardInterrupt):  # one one-minute epoch backed up, then killed
        training.train(small_arm, train, val, callbacks=[clock, FailAtEpoch(1)], **run)
    assert zoo.training.backup.backup_seconds(str(tmp_path / "backup")) == 60.0
    # Resumed: the minute already spent counts, so after its second epoch a third would
    # pass 2.5 minutes (a budget restarted at the resume would have run three).
    clock.now = 0.0
    _, history = training.train(small_arm, train, val, callbacks=[clock], resume=True, **run)
    assert [r["epoch"] for r in history] == [0, 1]
    with pytest.raises(ValueError, match="spent_seconds and spent_epochs must be >= 0"):
        training.StopAfterMinutes(1, spent_seconds=-1.0)


def test_gradient_clipping_reaches_the_keras_optimizer():
    grads = [tf.constant([3.0, 4.0]), tf.constant([0.0, 12.0])]  # norms 5 and 12, together 13
    whole = training.make_optimizer("adam", global_clipnorm=1.0)._clip_gradients(grads)
    np.testing.assert_allclose(np.concatenate(whole), np.array([3.0, 4.0, 0.0, 12.0]) / 13.0, rtol=1e-6)
    each = training.make_optimizer("adam", clipnorm=1.0)._clip_gradients(grads)
    np.testing.assert_allclose(np.concatenate(each), [0.6, 0.8, 0.0, 1.0], rtol=1e-6)


def test_warmup_ramps_linearly_then_decays_and_round_trips():
    optimizer = training.make_optimizer("adam", learning_rate=1e-3, decay=0.99, warmup=4)
    schedule = optimizer._learning_rate
    lr = [float(schedule(step)) for step in (0, 1, 3, 10)]
    np.testing.assert_allclose(lr, [2.5e-4 * 0.99**0, 5e-4 * 0.99, 1e-3 * 0.99**3, 1e-3 * 0.99**10],
                               rtol=1e-6)
    again = training.WarmupExponentialDecay.from_config(schedule.get_config())
    assert float(again(7)) == float(schedule(7))
    with pytest.raises(ValueError, match="warmup_steps must be >= 1"):
        training.make_optimizer(warmup=0)


@pytest.mark.parametrize("kwargs", [{"intra_op": 0}, {"inter_op": -1}, {"intra_op": 1.5}, {"inter_op": True}])
def test_thread_counts_must_be_positive_ints(kwargs):
    with pytest.raises(ValueError, match="must be None or an int >= 1"):
        training.set_threads(**kwargs)


def test_threads_are_set_before_tensorflow_starts_and_refused_after():
    code = ("import tensorflow as tf; from zoo.training import set_threads; print(set_threads(1, 2)); "
            "from reproduce.threads import thread_flags; print('flags:', thread_flags()); "
            "tf.constant(1.0) + 1\n"
            "try: set_threads(2, 2)\nexcept RuntimeError as e: print('refused:', e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout
    assert "(1, 2)" in out and "refused: set_threads(intra_op=2, inter_op=2) must run before" in out
    assert "flags: --intra-op-threads 1 --inter-op-threads 2" in out
    assert training.set_threads() == (tf.config.threading.get_intra_op_parallelism_threads(),
                                      tf.config.threading.get_inter_op_parallelism_threads())


def test_polyak_averaging_warms_up_its_momentum():
    """After step t the average moves with min(ema, (1 + t) / (10 + t)): early averages
    follow the trained weights instead of holding ema^t of the initial ones."""
    weights = keras.Variable(np.zeros(3, np.float32))
    optimizer = training.make_optimizer("adam", learning_rate=0.1, ema=0.999)
    optimizer.build([weights])
    average = np.zeros(3)
    for t in range(6):
        optimizer.apply_gradients([(tf.constant([1.0, -1.0, 2.0]), weights)])
        m = min(0.999, (1 + t) / (10 + t))
        average = m * average + (1 - m) * weights.numpy()
        np.testing.assert_allclose(optimizer._model_variables_moving_average[0].numpy(), average, rtol=1e-5)
    assert np.all(np.abs(average) > 0.5 * np.abs(weights.numpy()))  # Keras' own: 0.5% of the way
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again) is type(optimizer) and again.use_ema and again.ema_momentum == 0.999
