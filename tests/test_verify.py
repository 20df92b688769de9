"""`python -m reproduce verify`: the shipped digits models score their recorded test
bits/dim today (float32, 1e-3 bits/dim); a model that does not fails the command."""

import pytest

from reproduce import verify
from reproduce.__main__ import main
from zoo import hub

DIGITS = [name for name in hub.list_models() if name.endswith("-digits")]


def test_the_shipped_digits_models_score_their_records(capsys):
    assert len(DIGITS) >= 5
    rows = main(["verify", *DIGITS])
    out = capsys.readouterr().out
    assert [r["name"] for r in rows] == DIGITS
    for r in rows:
        assert r["ok"] and r["images"] == 447 and abs(r["difference"]) <= verify.TOLERANCE, r
        assert r["name"] in out
    assert "recorded" in out and "difference" in out and f"All {len(DIGITS)} checks agree" in out


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
