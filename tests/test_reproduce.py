import json

import pytest

from reproduce import records
from reproduce.__main__ import main
from reproduce.runs import Run, get_paper
from zoo import hub


def test_smoke_run_writes_record_figures_and_table(tmp_path):
    record = main(["arm", "--preset", "smoke", "--out", str(tmp_path), "--epochs", "1"])
    path = tmp_path / "runs" / "arm" / "smoke-digits.json"
    saved = json.loads(path.read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["test_images"] == 447 and saved["epochs"] == 1 and saved["steps"] == 1000 // 64
    assert abs(saved["test_nats"] - saved["test_bits_per_dim"] * 64 * 0.6931471805599453) < 1e-3
    for png in ["arm-smoke-digits.png", "arm-smoke-digits-curve.png"]:
        assert (tmp_path / "figures" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "README.md").read_text()
    assert "| arm | digits | smoke |" in table and f"{saved['test_nats']:.2f}" in table
    assert not list(tmp_path.rglob(".*.json")) and not list(tmp_path.rglob(".*.png")), "temp files left"


def test_list_names_papers_and_presets(capsys):
    main(["--list"])
    out = capsys.readouterr().out
    assert "\n  arm\n" in out and "smoke" in out and "cpu" in out


def test_a_run_with_no_variant_flags_is_named_without_a_variant(tmp_path):
    record = main(["vae_flows", "--preset", "smoke", "--out", str(tmp_path), "--epochs", "1"])
    assert "variant" not in record
    assert [p.name for p in (tmp_path / "runs" / "vae_flows").iterdir()] == ["smoke-digits.json"]
    assert (tmp_path / "figures" / "vae_flows-smoke-digits-reconstructions.png").is_file()
    # A flag given names the variant; a flag the preset sets does too.
    assert Run("vae_flows", "smoke", flags={"posterior": "iaf", "prior": None}).variant == "iaf"
    assert Run("vae_flows", "cpu", flags={"posterior": "iaf"}).variant == "iaf-normal"


@pytest.mark.parametrize("name", hub.list_models())
def test_the_run_of_each_shipped_model_names_it_and_its_record(name):
    """The entry's paper, preset and variant flags make the `Run` that published it: the
    same pretrained name and model class, and the record that verify compares with (the
    record names stay those of the runs that wrote them)."""
    entry = hub.entry(name)
    paper = get_paper(entry["paper"])
    run = Run(paper, entry["preset"], entry["dataset"], {f: entry["config"][f] for f in paper.flags})
    assert (run.pretrained_name, run.model_class, run.variant) == (name, entry["model"], entry["variant"])
    record = json.loads(run.record_path(records.RESULTS).read_text())
    assert (record["test_bits_per_dim"], record["git_commit"]) == (entry["test_bits_per_dim"], entry["git_commit"])
