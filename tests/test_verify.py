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
    assert "recorded" in out and "difference" in out and f"All {len(DIGITS)} agree" in out


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
    assert caught.value.code == 1 and "FAIL" in out and "1 of 1 failed: arm-digits" in out
