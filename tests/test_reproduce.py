import json

from reproduce.__main__ import main


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
