"""What a new user meets first: quiet imports, one-line interrupts that resume, the
history and the parameter count stated once, every trainable variable trained, and a
clear error when the clone's folder shadows the package."""

import csv
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tiny_models import CASES, args_for, random_images, tiny_case
from reproduce.__main__ import main
from zoo import training
from zoo._quiet import gpu_expected
from zoo.models import ARM, Glow

ROOT = Path(__file__).resolve().parent.parent


def small_arm():
    return ARM(image_shape=(4, 4, 1), num_levels=3, filters=4, kernel_size=2, dilations=[1])


def dataset(n, seed):
    return tf.data.Dataset.from_tensor_slices(random_images(n, 3, (4, 4, 1), seed))


def csv_epochs(path):
    with open(path, newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


class InterruptAfterEpoch(keras.callbacks.Callback):
    """Ctrl-C at the end of epoch `epoch` (0-based), after the history row is written and
    before the backup is saved: the backup holds the epoch before it."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def quiet_env():
    """The environment of a user who did not set TensorFlow's log level."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


# ---- interrupts and resumes --------------------------------------------------------

def test_an_interrupt_names_the_backed_up_epochs_and_the_history_keeps_one_row_per_epoch(tmp_path):
    kwargs = dict(num_train=32, epochs=4, batch_size=16, seed=1, verbose=0)
    with pytest.raises(training.TrainingInterrupted) as caught:
        training.train(small_arm, dataset(32, 1), dataset(16, 2), run_dir=str(tmp_path),
                       callbacks=[InterruptAfterEpoch(2)], **kwargs)
    assert caught.value.epochs == 2  # epoch 3 (index 2) has its history row but no backup yet
    assert csv_epochs(tmp_path / "history.csv") == [0, 1, 2]
    assert str(caught.value) == (f"Interrupted during epoch 3: the backup of epoch 2 in "
                                 f"{tmp_path / 'backup'} is safe")
    _, history = training.train(small_arm, dataset(32, 1), dataset(16, 2), run_dir=str(tmp_path),
                                resume=True, **kwargs)
    assert csv_epochs(tmp_path / "history.csv") == [0, 1, 2, 3]  # epoch 3 trained again, written once
    assert [int(r["epoch"]) for r in history] == [0, 1, 2, 3]


def test_resume_without_a_backup_says_so_and_trains_from_scratch(tmp_path, capsys):
    run_dir = tmp_path / "mistyped"
    _, history = training.train(small_arm, dataset(32, 1), dataset(16, 2), num_train=32, epochs=2,
                                batch_size=16, run_dir=str(run_dir), resume=True)
    out = capsys.readouterr().out
    assert f"Nothing to resume: no backup in {run_dir / 'backup'}; training from scratch.\n" in out
    assert "resuming at epoch" not in out and [int(r["epoch"]) for r in history] == [0, 1]


def test_ctrl_c_prints_one_line_with_the_resume_command_and_exits_130(tmp_path):
    argv = ["arm", "--preset", "smoke", "--epochs", "50", "--out", str(tmp_path / "out")]
    # Ctrl-C's SIGINT as a terminal delivers it: a suite started in the background (`cmd &`)
    # runs with SIGINT ignored, which children inherit and Python then leaves ignored, so the
    # child installs Python's handler itself (a preexec_fn runs Python in a fork of this
    # multi-threaded process, which can crash the child before it starts).
    child = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "sys.argv[0] = 'reproduce'; runpy.run_module('reproduce', run_name='__main__', alter_sys=True)")
    run = subprocess.Popen([sys.executable, "-c", child, *argv], cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    for line in run.stdout:
        if line.startswith("epoch  2/50"):  # printed once epoch 2's backup is saved
            run.send_signal(signal.SIGINT)
            break
    _, err = run.communicate(timeout=300)
    assert run.returncode == 130
    assert len(err.splitlines()) == 1, err
    work = tmp_path / "out" / "work" / "arm" / "smoke-digits"
    found = re.fullmatch(r"Interrupted during epoch (\d+): the backup of epoch (\d+) in (\S+) is safe; "
                         r"resume with: (.*)\n", err)
    assert found, err
    during, backed_up = int(found[1]), int(found[2])
    assert during == backed_up + 1 and backed_up >= 2 and found[3] == str(work / "backup")
    assert found[4] == "python -m reproduce " + shlex.join(argv) + " --resume"
    # The printed command continues after the backed-up epoch (two epochs more, to be quick).
    resume = shlex.split(found[4])[3:]
    resume[resume.index("--epochs") + 1] = str(backed_up + 2)
    done = subprocess.run([sys.executable, "-m", "reproduce", *resume], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming at epoch {backed_up + 1}." in done.stdout
    assert csv_epochs(work / "history.csv") == list(range(backed_up + 2))
    # The training line and the record state one parameter count.
    record = json.loads((tmp_path / "out" / "runs" / "arm" / "smoke-digits.json").read_text())
    assert f"Training ARM ({record['parameters']:,} parameters)" in done.stdout


# ---- one parameter count -----------------------------------------------------------

def test_the_parameter_count_is_the_trainable_entries_only():
    """Glow's actnorms keep a non-trainable initialized flag each: state, not parameters."""
    model = Glow(image_shape=(4, 4, 1), num_levels=3, num_scales=2, depth=1, filters=8).build_for_images()
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    state = [v for v in model.non_trainable_weights if "initialized" in v.path]
    assert state and training.count_parameters(model) == trainable
    assert model.count_params() - training.count_parameters(model) >= len(state)


def test_a_pretrained_model_has_its_records_parameter_count_in_the_list_and_the_readme(capsys):
    model = zoo.load("arm-digits")
    record = json.loads((ROOT / "results" / "runs" / "arm" / "cpu-digits.json").read_text())
    assert training.count_parameters(model) == record["parameters"] == 421393
    assert "Training ARM (421,393 parameters)" in (ROOT / "README.md").read_text()
    main(["--list"])
    assert re.search(r"\n  arm-digits +421,393\n", capsys.readouterr().out)


# ---- no variable without a gradient ------------------------------------------------

@pytest.mark.parametrize("case", sorted(CASES))
def test_every_trainable_variable_gets_a_gradient(case):
    """A variable the loss cannot reach is a Keras warning at every step and a parameter
    that is never trained (e.g. the last gated layer's V, whose v' nothing reads)."""
    model = tiny_case(case)  # a fresh copy: a training pass moves batch-norm statistics
    images = random_images(8, model.num_levels, model.image_shape, seed=1)
    args = args_for(model, images)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(args, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert not [v.path for v, g in zip(model.trainable_weights, grads) if g is None]


# ---- a quiet import ----------------------------------------------------------------

@pytest.mark.skipif(gpu_expected(), reason="this machine may have a GPU: TensorFlow reports what it finds")
def test_import_zoo_prints_nothing_on_a_machine_without_a_gpu(tmp_path):
    """Nothing from TensorFlow's start-up or its CUDA probe, and nothing at all while
    PixelCNN++ (its four orderings) samples, not even an error-level line (oneDNN's about
    integer transposes), unless the user asks for TF's lines."""
    code = ("import sys, zoo; zoo.load('arm-digits').sample(2, seed=1); print('--', file=sys.stderr); "
            "zoo.load('pixelcnnpp-digits').sample(2, seed=1)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env=quiet_env(), timeout=600)
    assert done.returncode == 0, done.stderr
    start, pixelcnnpp = done.stderr.split("--\n")
    assert start == "" and pixelcnnpp == "", done.stderr
    asked = subprocess.run([sys.executable, "-c", "import zoo; zoo.load('arm-digits')"], capture_output=True,
                           text=True, cwd=tmp_path, env={**quiet_env(), "TF_CPP_MIN_LOG_LEVEL": "0"}, timeout=600)
    assert asked.returncode == 0 and "failed call to cuInit" in asked.stderr  # as the user asked


# ---- a folder named zoo ------------------------------------------------------------

def test_a_clone_named_zoo_seen_from_its_parent_is_one_line_from_the_command_line(tmp_path):
    (tmp_path / "zoo").symlink_to(ROOT, target_is_directory=True)  # `git clone URL zoo`, seen from above
    probe = subprocess.run([sys.executable, "-c", "import zoo; print(getattr(zoo, '__file__', None))"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    if probe.stdout.strip() != "None":
        pytest.skip("this installation is not hidden by a folder named zoo (not an editable install)")
    done = subprocess.run([sys.executable, "-m", "reproduce", "--list"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"python -m reproduce: error: `import zoo` found the folder {tmp_path / 'zoo'}, "
                           f"not the package zoo: a folder named zoo in the current folder (a clone named "
                           f"zoo, seen from its parent) hides the installed package; run from another "
                           f"folder.\n")
