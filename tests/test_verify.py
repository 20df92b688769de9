"""`python -m reproduce verify`: the shipped digits models score their recorded test
bits/dim today (float32, 1e-3 bits/dim) and agree with the run record their entry names;
a model that does not, or has no record, fails the command (exit status 1); a model whose
dataset is not prepared is not scored (exit status 2)."""

import json
import shutil

import pytest

from reproduce import records, verify
from reproduce.__main__ import main
from zoo import hub

DIGITS = [name for name in hub.list_models() if name.endswith("-digits")]
ROOT = records.RESULTS.parent


def test_the_shipped_digits_models_score_their_records(capsys):
    assert len(DIGITS) >= 5
    assert {"realnvp_ar-digits", "glow_ar-digits", "vae-sylvester_o-digits"} <= set(DIGITS)
    rows = main(["verify", *DIGITS])
    out = capsys.readouterr().out
    assert [r["name"] for r in rows] == DIGITS
    for r in rows:
        assert r["ok"] and r["images"] == 447 and abs(r["difference"]) <= verify.TOLERANCE, r
        line = next(line for line in out.splitlines() if line.startswith(r["name"] + " "))
        assert line.endswith(f"ok    {r['record']}") and (ROOT / r["record"]).is_file(), line
    assert "recorded" in out and "difference" in out and f"All {len(DIGITS)} checks agree" in out
    # A variant's record is not named after the model: the entry's paper, preset and variant name it.
    by_name = {r["name"]: r["record"] for r in rows}
    assert by_name["vae-sylvester_o-digits"] == "results/runs/vae_flows/cpu-sylvester_o-normal-digits.json"
    assert by_name["realnvp_ar-digits"] == "results/runs/realnvp/cpu_ar-digits.json"


def scored_as_entered(monkeypatch, *names):
    """Scoring skipped: a model of each of `names`' classes scores what its entry records,
    so that only the entry and its record decide."""
    numbers = {hub.entry(n)["model"]: hub.entry(n)["test_bits_per_dim"] for n in names}
    monkeypatch.setattr(verify.training, "evaluate", lambda model, images, batch_size: {
        "images": 447, "nats": 0.0, "bits_per_dim": numbers[type(model).__name__]})


@pytest.fixture
def results_copy(tmp_path, monkeypatch):
    """The repository's records copied to a temporary results/ that verify reads."""
    shutil.copytree(records.RESULTS / "runs", tmp_path / "results" / "runs")
    monkeypatch.setattr(records, "RESULTS", tmp_path / "results")
    return tmp_path / "results"


@pytest.fixture
def registry_copy(tmp_path, monkeypatch):
    """A temporary registry: `add(NAME, **changes)` copies a shipped entry (with `changes`)
    and its weights into it."""
    shipped = hub.PRETRAINED
    folder = tmp_path / "pretrained"
    folder.mkdir()
    monkeypatch.setattr(hub, "PRETRAINED", folder)

    def add(name, **changes):
        entry = {**json.loads((shipped / f"{name}.json").read_text()), **changes}
        shutil.copy(shipped / entry["weights"], folder)
        (folder / f"{entry['name']}.json").write_text(json.dumps(entry))
        return entry
    return add


def failed_line(argv, name, capsys):
    """Runs `main(argv)`, which must exit 1; the output line of `name`."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    out = capsys.readouterr().out
    assert caught.value.code == 1 and f"checks failed: {name}" in out, out
    return next(line for line in out.splitlines() if line.startswith(name + " "))


def test_a_variant_is_compared_with_its_own_record(results_copy, monkeypatch, capsys):
    scored_as_entered(monkeypatch, "vae-sylvester_o-digits", "realnvp_ar-digits")
    path = results_copy / "runs" / "vae_flows" / "cpu-sylvester_o-normal-digits.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "test_bits_per_dim": record["test_bits_per_dim"] + 0.01}))
    line = failed_line(["verify", "vae-sylvester_o-digits", "realnvp_ar-digits"], "vae-sylvester_o-digits",
                       capsys)
    assert "FAIL  results/runs/vae_flows/cpu-sylvester_o-normal-digits.json" in line
    assert f"the record says {record['test_bits_per_dim'] + 0.01:.4f}" in line
    path.unlink()
    line = failed_line(["verify", "vae-sylvester_o-digits"], "vae-sylvester_o-digits", capsys)
    assert "no record: that file does not exist" in line


def test_an_entry_its_record_does_not_back_fails(registry_copy, monkeypatch, capsys):
    registry_copy("glow_ar-digits", git_commit="1234567")
    scored_as_entered(monkeypatch, "glow_ar-digits")
    line = failed_line(["verify", "glow_ar-digits"], "glow_ar-digits", capsys)
    assert "results/runs/glow/cpu_ar-digits.json" in line and "trained at a222b8b" in line
    registry_copy("glow_ar-digits", preset="cpu")  # names the Gaussian prior's record, another number
    line = failed_line(["verify", "glow_ar-digits"], "glow_ar-digits", capsys)
    assert "results/runs/glow/cpu-digits.json" in line and "the record says 2.6031" in line


def test_an_entry_without_a_record_fails(registry_copy, monkeypatch, capsys):
    registry_copy("arm-digits", preset="smoke")
    scored_as_entered(monkeypatch, "arm-digits")
    line = failed_line(["verify", "arm-digits"], "arm-digits", capsys)
    assert "results/runs/arm/smoke-digits.json  no record: that file does not exist" in line
    registry_copy("arm-digits", paper=None)
    line = failed_line(["verify", "arm-digits"], "arm-digits", capsys)
    assert "names no paper" in line


def test_a_dataset_not_prepared_is_exit_status_2_with_how_to_prepare_it(tmp_path, capsys):
    name = next(n for n in hub.list_models() if hub.entry(n)["dataset"] == "mnist")
    with pytest.raises(SystemExit) as caught:
        main(["verify", name, "--data-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert caught.value.code == 2
    assert "not scored: mnist is not prepared" in captured.out and "1 of 1 checks not run" in captured.out
    assert captured.err.count("\n") == 1 and f"dataset 'mnist' is not prepared under {tmp_path}" in captured.err
    assert "`tfds build mnist --data_dir DIR`, then pass --data-dir DIR" in captured.err


def test_a_model_off_its_record_fails_the_command(monkeypatch, capsys):
    real_entry = hub.entry

    def off(name):
        return {**real_entry(name), "test_bits_per_dim": real_entry(name)["test_bits_per_dim"] + 0.01}

    monkeypatch.setattr(hub, "entry", off)
    monkeypatch.setattr(verify.training, "evaluate",
                        lambda model, images, batch_size: {"images": 447, "nats": 0.0,
                                                           "bits_per_dim": real_entry("arm-digits")["test_bits_per_dim"]})
    with pytest.raises(SystemExit) as caught:
        main(["verify", "arm-digits"])
    out = capsys.readouterr().out
    assert caught.value.code == 1 and "FAIL" in out and "1 of 1 checks failed: arm-digits" in out


def test_every_mode_scores_a_shipped_model_alike(capsys):
    rows = main(["verify", "arm-digits", "--modes", "8"])
    out = capsys.readouterr().out
    modes_row = rows[-1]
    assert modes_row["ok"] and modes_row["images"] == 8 and modes_row["spread"] <= 1e-3
    assert modes_row["samples"] is True, "the ARM's cached and naive samplers drew different images"
    assert set(modes_row["bits_per_dim"]) == set(verify.modes.MODES)
    assert "savedmodel" in out and "All 2 checks agree" in out


def test_a_mode_off_by_more_than_the_tolerance_fails(monkeypatch, capsys):
    real_copy = verify.modes.float32_copy

    def off(model):  # a "float32 copy" whose output bias moved: its likelihood differs
        copy = real_copy(model)
        copy.set_weights([w + 1e-2 if w.ndim == 1 else w for w in copy.get_weights()])
        return copy

    monkeypatch.setattr(verify.modes, "float32_copy", off)
    with pytest.raises(SystemExit) as caught:
        main(["verify", "arm-digits", "--modes", "4"])
    out = capsys.readouterr().out
    assert caught.value.code == 1 and "modes differ by up to" in out and "1 of 2 checks failed" in out
