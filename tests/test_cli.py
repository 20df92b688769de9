"""`python -m reproduce`: commands, flags refused in one line (exit 2), where runs go, and
what a run prints (plain epoch lines, its number beside the record and the published one)."""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reproduce import records
from reproduce.__main__ import build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def refused(argv, capsys):
    """`main(argv)`'s exit status and its stderr."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    return caught.value.code, capsys.readouterr().err


@pytest.mark.parametrize("argv,flag", [
    (["--epochs", "-1"], "--epochs"),
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "2.5"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-5"], "--batch-size"),
    (["--seed", "-1"], "--seed"),
    (["--intra-op-threads", "0"], "--intra-op-threads"),
])
def test_bad_numbers_are_one_line_errors_naming_the_flag(argv, flag, capsys, tmp_path):
    code, err = refused(["arm", "--preset", "smoke", "--out", str(tmp_path), *argv], capsys)
    assert code == 2 and flag in err and "expected" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir()), "a refused command line wrote files"


@pytest.mark.parametrize("argv,says", [
    (["arm", "--preset", "smoke", "--dataset", "digitz"], ["unknown dataset 'digitz'", "--dataset"]),
    (["arm", "--preset", "smoke", "--dataset", "mnist", "--data-dir", "{tmp}"],
     ["'mnist' is not prepared under {tmp}", "--data-dir", "tfds build mnist"]),
    (["arm", "--preset", "smoke", "--batch-size", "5000"], ["--batch-size 5000 exceeds the 1000"]),
    (["arm", "--preset", "huge"], ["unknown preset 'huge'"]),
    (["nope"], ["invalid choice: 'nope'"]),
    ([], ["name a paper"]),
    (["verify", "glow-mars"], ["unknown pretrained model 'glow-mars'"]),
])
def test_bad_datasets_and_names_are_one_line_errors(argv, says, capsys, tmp_path):
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, err = refused([*argv, *(["--out", str(tmp_path / "out")] if argv[:1] == ["arm"] else [])], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for text in says:
        assert text.format(tmp=tmp_path) in err
    assert not (tmp_path / "out").exists()


def test_bench_and_verify_are_subcommands_beside_the_papers():
    parser = build_parser()
    run = parser.parse_args(["arm", "--preset", "cpu"])
    assert (run.command, run.preset, run.out, run.epochs) == ("arm", "cpu", "out", None)
    bench = parser.parse_args(["bench", "--quick", "--out", "x"])
    assert (bench.command, bench.quick, bench.out) == ("bench", True, "x")
    verify = parser.parse_args(["verify", "arm-digits", "glow-digits", "--data-dir", "d"])
    assert (verify.command, verify.names, verify.data_dir, verify.batch_size) == (
        "verify", ["arm-digits", "glow-digits"], "d", 64)
    assert "argv[:1]" not in (ROOT / "reproduce" / "__main__.py").read_text()


def test_every_flag_says_what_it_does_and_its_default():
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in [("", parser), *commands.choices.items()]:
        for action in command._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            flag = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and len(action.help) > 20, f"{flag} has no help text"
            if action.nargs != 0:  # a flag that takes a value says what it is without one
                assert "default" in action.help, f"{flag}: its help does not say its default"


def test_publish_refuses_uncommitted_changes_to_tracked_files(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(records, "uncommitted_changes", lambda: ["zoo/models/arm.py"])
    code, err = refused(["arm", "--preset", "smoke", "--publish", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--publish refuses" in err and "uncommitted changes" in err and "zoo/models/arm.py" in err
    monkeypatch.setattr(records, "uncommitted_changes", lambda: None)
    code, err = refused(["arm", "--preset", "smoke", "--publish", "--out", str(tmp_path)], capsys)
    assert code == 2 and "git checkout" in err
    assert not list(tmp_path.iterdir())


def test_list_shows_each_presets_model_class_and_dataset_the_datasets_and_pretrained(capsys):
    main(["--list"])
    out = capsys.readouterr().out
    assert re.search(r"\n    smoke +ARM on digits\n", out)
    assert re.search(r"\n    cpu +GatedPixelCNN on binarized_mnist; own settings for digits\n", out)
    assert re.search(r"\n    paper +PixelCNN on cifar10", out)
    assert "digits" in out and "17 levels" in out and "celeb_a" in out and "--data-dir" in out
    assert "arm-digits" in out and "pixelcnn-binarized_mnist" in out


def test_a_run_goes_to_out_by_default_and_ends_with_the_comparison(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    table = (records.RESULTS / "README.md").read_text()
    main(["arm", "--preset", "smoke", "--epochs", "2"])
    out = capsys.readouterr().out
    assert (tmp_path / "out" / "runs" / "arm" / "smoke-digits.json").is_file()
    assert (tmp_path / "out" / "README.md").is_file() and (tmp_path / "out" / "figures").is_dir()
    assert not (records.RESULTS / "runs" / "arm" / "smoke-digits.json").exists()
    assert (records.RESULTS / "README.md").read_text() == table, "a user's run changed the repository's table"
    # Progress as plain lines (stdout is not a terminal here), the unit named, the kept epoch said.
    assert "\r" not in out and "\b" not in out and "\x1b[" not in out
    assert "bits/dim" in out and "epoch 1/2  train " in out and "epoch 2/2  train " in out
    assert "Trained 2 of 2 epochs." in out and "Keeping the weights of epoch" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    record = json.loads((tmp_path / "out" / "runs" / "arm" / "smoke-digits.json").read_text())
    assert f"{record['test_nats']:.2f}" in out.split("this run")[-1]
    assert "none" in rows["recorded"]  # no smoke record in results/
    assert "88.70" in rows["published"] and "validation split" in rows["published"]


def test_the_command_line_shows_no_cuda_probe_noise_on_a_machine_without_a_gpu(tmp_path):
    from zoo._quiet import gpu_expected

    if gpu_expected():
        pytest.skip("this machine may have a GPU: TensorFlow reports what it finds")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "reproduce", "arm", "--preset", "smoke", "--epochs", "0"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 2 and "--epochs" in done.stderr
    done = subprocess.run([sys.executable, "-m", "reproduce", "--list"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0 and "arm-digits" in done.stdout
    for noise in ["cuInit", "cuda drivers", "absl::InitializeLog", "cpu_feature_guard"]:
        assert noise not in done.stderr, done.stderr
