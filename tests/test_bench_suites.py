"""`python -m reproduce bench --suite quality --quick` end to end (both sides trained in
alternating slices of equal steps on the same batches, evaluated on the same images, the
curves, gap, time to TFP's final bits/dim and targets recomputed from the records, the
figure), and `--suite gpu` skipping cleanly where TensorFlow sees no GPU."""

import copy
import json
import math
from pathlib import Path

import pytest

from reproduce import bench
from reproduce.__main__ import build_parser, main
from reproduce.bench import gpu, report
from reproduce.bench import quality as quality_suite
from reproduce.cli_errors import CommandLineError


@pytest.fixture(scope="module")
def quality(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_quality")
    main(["bench", "--suite", "quality", "--quick", "--out", str(out), "--note", "a quality test run"])
    doc = json.loads((out / "benchmarks.json").read_text())
    assert list(doc["suites"]) == ["quality"]
    return doc["suites"]["quality"], (out / "benchmarks.md").read_text(), out


def pairs(r):
    return {name: r[f"{name}_quality"] for name in report.MODELS}


def finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_the_suite_writes_its_section_figure_and_provenance(quality):
    r, md, out = quality
    assert r["suite"] == "quality" and r["quick"] and r["note"] == "a quality test run"
    assert "--suite quality --quick" in r["command"]
    assert set(pairs(r)) == {"pixelcnnpp", "glow"}
    png = out / report.FIGURE
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({report.FIGURE})" in md
    assert "## Suite `quality`" in md and "## Time to quality" in md and "a quality test run" in md
    for heading in ("### PixelCNN++ vs tfd.PixelCNN: the curves", "### Glow vs tfb.Glow: the curves"):
        assert heading in md
    assert not list(out.rglob(".*")), "temporary files left"


def test_both_sides_train_alternating_slices_of_equal_steps_on_the_same_batches(quality):
    r, _, _ = quality
    cfg = r["config"]
    size = cfg["slice_steps"]
    for name, q in pairs(r).items():
        rounds = []
        for key in ("ours", "tfp"):
            side = q[key]
            slices = side["slices"]
            assert slices and side["diverged_at_step"] is None
            # Every slice but the last (cut by the budget) has the same number of steps.
            assert all(s["steps"] == size for s in slices[:-1]) and 1 <= slices[-1]["steps"] <= size
            # The first step (tracing) is off the clock; the slices hold every other step.
            assert 1 + sum(s["steps"] for s in slices) == side["steps"]
            assert slices[0]["start_step"] == 1 and slices[0]["start_seconds"] == 0.0
            assert side["training_seconds"] >= cfg["budget_seconds"] > slices[-1]["start_seconds"]
            assert side["training_seconds"] == pytest.approx(sum(s["seconds"] for s in slices), rel=1e-9)
            assert finite(side["first_step_seconds"]) and side["first_step_seconds"] > 0
            rounds += [(s["round"], key) for s in slices]
        rounds.sort()
        assert [k for _, k in rounds[:2]] == ["ours", "tfp"], "the sides take turns from the start"
        assert [n for n, _ in rounds] == list(range(len(rounds)))
        # Slices that end at the same step on both sides trained on the same batches.
        ends = {s["start_step"] + s["steps"]: s["batches_digest"] for s in q["ours"]["slices"]}
        shared = [(ends[s["start_step"] + s["steps"]], s["batches_digest"]) for s in q["tfp"]["slices"]
                  if s["start_step"] + s["steps"] in ends]
        assert shared and all(a == b for a, b in shared), name


def test_both_sides_are_evaluated_on_the_same_images_at_the_same_checkpoints(quality):
    r, _, _ = quality
    cfg = r["config"]
    marks = quality_suite.checkpoints(cfg["budget_seconds"], cfg["checkpoint_seconds"])
    assert len(marks) >= 2 and marks[-1] == cfg["budget_seconds"]
    for q in pairs(r).values():
        assert q["eval_images"] == cfg["eval_images"]
        for key in ("ours", "tfp"):
            curve = q[key]["curve"]
            # One point a checkpoint (a step that passes two evaluates once, at the later).
            seen = [p["checkpoint_seconds"] for p in curve]
            assert seen == sorted(set(seen)) and set(seen) <= set(marks) and seen[-1] == marks[-1]
            for p in curve:
                assert p["images"] == q["eval_images"] and p["images_digest"] == q["eval_images_digest"]
                assert finite(p["bits_per_dim"]) and 0 < p["bits_per_dim"] < 20
                assert p["seconds"] >= p["checkpoint_seconds"]
            assert q[key]["final_bits_per_dim"] == curve[-1]["bits_per_dim"]


def test_gap_time_to_reach_and_targets_come_from_the_curves(quality):
    r, md, _ = quality
    for q in pairs(r).values():
        ours, tfp = q["ours"], q["tfp"]
        assert q["gap_bits_per_dim"] == ours["final_bits_per_dim"] - tfp["final_bits_per_dim"]
        reach = quality_suite.seconds_to_reach(ours["curve"], tfp["final_bits_per_dim"])
        assert q["ours_seconds_to_tfp_final"] == reach
        assert q["tfp_seconds_to_final"] == tfp["curve"][-1]["seconds"]
        assert q["fraction_of_tfp_time"] == (None if reach is None else reach / tfp["curve"][-1]["seconds"])
    assert r["targets"] == quality_suite.targets(r) and len(r["targets"]) == 2
    for t, q in zip(r["targets"], pairs(r).values()):
        assert "in at most half TFP's time" in t["name"] and t["needed"] == 0.5 and t["at_most"]
        assert t["value"] == q["fraction_of_tfp_time"]
        assert t["met"] == (t["value"] is not None and t["value"] <= 0.5)
        assert t.get("upper_bound", False) == q["ours_reached_by_first_checkpoint"]
        assert f"| {t['name']} |" in md


def test_a_fraction_reached_by_our_first_checkpoint_is_shown_as_a_bound(quality):
    r = copy.deepcopy(quality[0])
    name, q = next(iter(pairs(r).items()))
    first = q["ours"]["curve"][0]
    q.update(ours_reached_by_first_checkpoint=True, ours_seconds_to_tfp_final=first["seconds"],
             fraction_of_tfp_time=0.1)
    row = quality_suite.targets(r)[0]
    assert row["upper_bound"] and row["value"] == 0.1
    assert report.target_cells(row) == ("<= 0.10 of TFP's time", "<= 0.50")
    q["ours_reached_by_first_checkpoint"] = False
    assert report.target_cells(quality_suite.targets(r)[0])[0] == "0.10 of TFP's time"


def test_seconds_to_reach_interpolates_between_checkpoints():
    curve = [{"seconds": 10.0, "bits_per_dim": 3.0}, {"seconds": 20.0, "bits_per_dim": 2.0},
             {"seconds": 30.0, "bits_per_dim": 2.5}, {"seconds": 40.0, "bits_per_dim": 1.0}]
    assert quality_suite.seconds_to_reach(curve, 2.5) == pytest.approx(15.0)
    assert quality_suite.seconds_to_reach(curve, 1.5) == pytest.approx(30.0 + 10.0 * (2.5 - 1.5) / 1.5)
    assert quality_suite.seconds_to_reach(curve, 3.5) == 10.0  # already there at the first checkpoint
    assert quality_suite.seconds_to_reach(curve, 0.5) is None
    assert quality_suite.checkpoints(50.0, 20.0) == [20.0, 40.0, 50.0]


def test_quality_without_prepared_mnist_is_one_line_and_writes_nothing(tmp_path, capsys):
    empty, out = tmp_path / "tfds", tmp_path / "out"
    empty.mkdir()
    with pytest.raises(CommandLineError):
        main(["bench", "--suite", "quality", "--data-dir", str(empty), "--out", str(out)])
    assert "not prepared" in capsys.readouterr().err and not out.exists()


def test_the_gpu_suite_skips_cleanly_without_a_gpu(tmp_path, capsys):
    if gpu.gpus():
        pytest.skip("TensorFlow sees a GPU here: the suite would run")
    args = build_parser().parse_args(["bench", "--suite", "gpu", "--out", str(tmp_path / "out")])
    assert args.suite == "gpu" and "gpu" in bench.SUITES
    assert main(["bench", "--suite", "gpu", "--out", str(tmp_path / "out")]) is None  # exit status 0
    assert capsys.readouterr().out.strip() == gpu.SKIP_MESSAGE
    assert not (tmp_path / "out").exists() and not list(Path(tmp_path).iterdir())
