"""`python -m reproduce bench --quick` (the `steps` suite) and `--suite maf --quick`: every
section measured with positive finite numbers, every ratio and target recomputed from the
raw times; a suite's run keeps the other suites' sections in the JSON and the markdown;
the FLOP counter's convention checked exactly on single layers."""

import json
import math
import shutil
import statistics
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduce import bench
from reproduce.__main__ import build_parser, main
from reproduce.bench import maf as maf_suite
from reproduce.bench import report
from reproduce.bench import steps as steps_suite
from reproduce.bench.flops import TRAIN_FACTOR, forward_flops
from reproduce.bench.measure import matmul_task, measure_steps, memory_info
from reproduce.cli_errors import CommandLineError

# ---- the FLOP counter -------------------------------------------------------------


def test_conv_flops_are_2_h_w_kh_kw_cin_cout_per_image():
    conv = keras.layers.Conv2D(8, (3, 2), strides=2, padding="same")
    conv.build((None, 10, 12, 3))
    # Output 5 x 6 (stride 2, same padding), 2 images.
    assert forward_flops(conv, tf.TensorSpec([2, 10, 12, 3])) == 2 * 2 * 5 * 6 * 3 * 2 * 3 * 8


def test_transposed_conv_counts_its_input_positions():
    up = keras.layers.Conv2DTranspose(5, 3, strides=2, padding="same")
    up.build((None, 4, 6, 7))
    # The strided conv it inverts: 4 x 6 positions, 3 x 3 taps, 7 -> 5 channels.
    assert forward_flops(up, tf.TensorSpec([2, 4, 6, 7])) == 2 * 2 * 4 * 6 * 3 * 3 * 7 * 5


def test_dense_einsum_and_elementwise():
    dense = keras.layers.Dense(6)
    dense.build((None, 5))
    assert forward_flops(dense, tf.TensorSpec([3, 5])) == 2 * 3 * 5 * 6
    assert forward_flops(lambda x, w: tf.einsum("...c,cd->...d", x, w), tf.TensorSpec([2, 4, 6, 7]),
                         tf.TensorSpec([7, 9])) == 2 * 2 * 4 * 6 * 9 * 7
    assert forward_flops(lambda x: tf.nn.elu(x) * 2.0 + 1.0, tf.TensorSpec([4, 8])) == 0


def test_nested_functions_count_once_and_cond_branches_not_at_all():
    conv = keras.layers.Conv2D(4, 3, padding="same")
    conv.build((None, 6, 6, 2))
    once = 2 * 1 * 6 * 6 * 3 * 3 * 2 * 4
    inner = tf.function(conv)
    assert forward_flops(lambda x: inner(x) + 1.0, tf.TensorSpec([1, 6, 6, 2])) == once
    flag = tf.Variable(False)  # a one-time initialization branch is no per-step work
    assert forward_flops(lambda x: conv(x) + tf.cond(flag, lambda: conv(x), lambda: tf.zeros_like(conv(x))),
                         tf.TensorSpec([1, 6, 6, 2])) == once


def test_a_nested_function_traced_for_any_batch_counts_the_callers_batch():
    conv = keras.layers.Conv2D(4, 3, padding="same")
    conv.build((None, 6, 6, 2))
    inner = tf.function(conv, input_signature=[tf.TensorSpec([None, 6, 6, 2])])  # as TFP's WeightNorm.call
    assert forward_flops(lambda x: inner(x), tf.TensorSpec([3, 6, 6, 2])) == 2 * 3 * 6 * 6 * 3 * 3 * 2 * 4


def test_unknown_shapes_are_refused():
    with pytest.raises(ValueError, match="fully defined"):
        forward_flops(tf.nn.relu, tf.TensorSpec([None, 4]))


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_peak_matmul_multiplies_one_pair_per_copy_side_by_side(dtype):
    task = matmul_task(48, dtype, copies=3)
    products = task["run"]()
    assert task["flops"] == 3 * 2 * 48**3 and len(products) == len(task["pairs"]) == 3
    for (a, b), product in zip(task["pairs"], products):
        want = tf.cast(a, tf.float64).numpy() @ tf.cast(b, tf.float64).numpy()
        assert product.dtype == dtype
        np.testing.assert_allclose(tf.cast(product, tf.float64), want, rtol=0.05, atol=0.2)
    assert not np.allclose(products[0], products[1])  # different pairs, not one product thrice


def test_xla_steps_are_timed_in_rounds_of_their_own_after_the_others():
    calls = []

    def task(name, xla=False):
        return {"run": lambda: calls.append(name), "images": 1, "xla": xla}

    m, mm = measure_steps({"ours": task("ours"), "ours_xla": task("ours_xla", True), "tfp": task("tfp")},
                          {"run": lambda: calls.append("matmul") or tf.constant(0.0), "images": 1,
                           "flops": 1}, warmup=1, repetitions=3)
    timed = [c for c in calls if c != "matmul"]
    last_plain = max(i for i, c in enumerate(timed) if c != "ours_xla")
    first_xla_timed = [i for i, c in enumerate(timed) if c == "ours_xla"][1]  # after its warm-up call
    assert first_xla_timed > last_plain
    assert set(m) == {"ours", "ours_xla", "tfp"} and all(len(v["seconds"]) == 3 for v in m.values())
    assert len(mm["seconds"]) == 3


# ---- the quick run --------------------------------------------------------------


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    main(["bench", "--quick", "--out", str(out), "--note", "a test run"])
    doc = json.loads((out / "benchmarks.json").read_text())
    assert set(doc["suites"]) == {"steps"}
    return doc["suites"]["steps"], (out / "benchmarks.md").read_text()


def measurements(node):
    """Every measurement dict (those with timed `seconds` and an image count) in the results."""
    if isinstance(node, dict):
        if "seconds" in node and "images" in node:
            yield node
        for value in node.values():
            yield from measurements(value)
    elif isinstance(node, list):
        for value in node:
            yield from measurements(value)


def positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_every_section_is_measured(quick):
    r, _ = quick
    assert r["quick"] and r["note"] == "a test run"
    assert r["suite"] == "steps" and "--suite steps --quick" in r["command"]
    assert r["machine"]["cores"] >= 1 and r["machine"]["cpu"]
    assert {"tensorflow", "keras", "tensorflow_probability", "tf_keras"} <= set(r["machine"])
    row = r["pixelcnnpp_train"][0]
    assert {"ours", "tfp"} <= set(row) and positive(row["ours_vs_tfp"])
    assert {"ours_cached", "ours_naive", "tfp"} <= set(r["pixelcnnpp_sample"])
    assert {"ours", "ours_bf16", "ours_xla", "tfp"} <= set(r["glow"]["train"])
    assert {"ours", "tfp"} <= set(r["glow"]["sample"])
    assert {"cached", "naive"} <= set(r["arm_sample"])
    assert set(r["preset_steps"]) == {"pixelcnnpp", "glow"}
    assert {"ours", "ours_bf16", "tfp"} <= set(row) and positive(row["ours_bf16_vs_tfp"])
    assert positive(r["matmul_peak"]["gflops"]) and r["matmul_peak"]["gflops_best"] >= r["matmul_peak"]["gflops"]
    found = list(measurements(r))
    # PixelCNN++ train (float32, bfloat16, TFP; no XLA when quick) and sample, Glow train
    # (float32, bfloat16, XLA, TFP) and sample, ARM; a matmul timed with each training
    # comparison; each preset's step with an fp32 and a bf16 matmul.
    assert len(found) == 3 + 3 + 4 + 2 + 2 + 2 + 2 * 3
    for m in found:
        assert m["seconds"] and all(positive(s) for s in m["seconds"]) and positive(m["first_call_seconds"])
        assert m["median_seconds"] == statistics.median(m["seconds"])
        assert m["images_per_second"] == m["images"] / m["median_seconds"]
        if memory_info() is not None:  # some TF builds keep no CPU allocator statistics
            assert math.isfinite(m["peak_memory_mb"]) and m["peak_memory_mb"] >= 0
        else:
            assert m["peak_memory_mb"] is None


def test_ratios_and_fractions_come_from_the_raw_numbers(quick):
    r, _ = quick
    peak = r["matmul_peak"]
    assert peak["gflops"] == peak["flops"] / statistics.median(peak["seconds"]) / 1e9

    def ips(m):
        return m["images"] / statistics.median(m["seconds"])

    def fractions_of_the_same_rounds_matmul(train):
        matmul_gflops = peak["flops"] / statistics.median(train["matmul"]["seconds"]) / 1e9
        assert train["matmul"]["gflops"] == pytest.approx(matmul_gflops, rel=1e-12)
        assert ({k for k in train if k.startswith("ours") or k == "tfp"} - {"ours_vs_tfp", "ours_bf16_vs_tfp"}
                == set(train["flops"]))
        for name, f in train["flops"].items():
            assert positive(f["flops_per_step"]) and f["flops_per_step"] % TRAIN_FACTOR == 0
            assert f["fraction_of_matmul_peak"] == pytest.approx(
                f["flops_per_step"] / statistics.median(train[name]["seconds"]) / 1e9 / matmul_gflops, rel=1e-12)

    for row in r["pixelcnnpp_train"]:
        assert row["ours_vs_tfp"] == pytest.approx(ips(row["ours"]) / ips(row["tfp"]), rel=1e-12)
        assert row["ours_bf16_vs_tfp"] == pytest.approx(ips(row["ours_bf16"]) / ips(row["tfp"]), rel=1e-12)
        fractions_of_the_same_rounds_matmul(row)
    s = r["pixelcnnpp_sample"]
    assert s["cached_vs_naive"] == pytest.approx(ips(s["ours_cached"]) / ips(s["ours_naive"]), rel=1e-12)
    assert s["cached_vs_tfp"] == pytest.approx(ips(s["ours_cached"]) / ips(s["tfp"]), rel=1e-12)
    assert s["naive_vs_tfp"] == pytest.approx(ips(s["ours_naive"]) / ips(s["tfp"]), rel=1e-12)
    g = r["glow"]
    fractions_of_the_same_rounds_matmul(g["train"])
    assert g["train"]["ours_vs_tfp"] == pytest.approx(ips(g["train"]["ours"]) / ips(g["train"]["tfp"]), rel=1e-12)
    assert g["train"]["ours_bf16_vs_tfp"] == pytest.approx(ips(g["train"]["ours_bf16"]) / ips(g["train"]["tfp"]),
                                                           rel=1e-12)
    assert g["train"]["xla_speedup"] == pytest.approx(ips(g["train"]["ours_xla"]) / ips(g["train"]["ours"]),
                                                      rel=1e-12)
    assert g["sample"]["ours_vs_tfp"] == pytest.approx(ips(g["sample"]["ours"]) / ips(g["sample"]["tfp"]),
                                                       rel=1e-12)
    a = r["arm_sample"]
    assert a["cached_vs_naive"] == pytest.approx(ips(a["cached"]) / ips(a["naive"]), rel=1e-12)
    for p in r["preset_steps"].values():
        assert p["precision"] == "bfloat16" and positive(p["flops_per_step"])
        gflops = p["flops_per_step"] / statistics.median(p["ours"]["seconds"]) / 1e9
        for key, matmul in (("fraction_of_matmul_peak", "matmul"), ("fraction_of_bf16_matmul_peak", "matmul_bf16")):
            peak_gflops = peak["flops"] / statistics.median(p[matmul]["seconds"]) / 1e9
            assert p[key] == pytest.approx(gflops / peak_gflops, rel=1e-12)


def test_targets_hold_the_measured_ratios(quick):
    r, _ = quick
    assert r["targets"] == steps_suite.targets(r)
    values = {t["name"]: t for t in r["targets"]}
    s = r["pixelcnnpp_sample"]
    by_value = [t for t in values.values() if "naive sampler" in t["name"]]
    assert len(by_value) == 1 and by_value[0]["value"] == s["cached_vs_naive"] and by_value[0]["needed"] == 20
    glow = [t for t in values.values() if t["name"].startswith("Glow training step >= 1.2x")]
    assert [t["value"] for t in glow] == [r["glow"]["train"]["ours_vs_tfp"], r["glow"]["train"]["ours_bf16_vs_tfp"]]
    peak = [t for t in values.values() if t["name"].startswith("Glow training step >= 40%")]
    assert len(peak) == 1 and peak[0]["needed"] == 0.4
    assert peak[0]["value"] == r["preset_steps"]["glow"]["fraction_of_matmul_peak"]
    assert len([t for t in values.values() if "1.5x tfd.PixelCNN" in t["name"]]) == 2 * len(r["pixelcnnpp_train"])
    for t in r["targets"]:
        assert positive(t["value"]) and t["met"] == (t["value"] >= t["needed"])


def test_markdown_shows_every_section_and_target(quick):
    r, md = quick
    for heading in ("## Targets", "## fp32 matmul peak", "## PixelCNN++ training step",
                    "## PixelCNN++ sampling", "## Glow", "## Causal-conv ARM sampling",
                    "## Training steps at the `cpu` presets' sizes",
                    "## How it was measured", "## Where the rest of the peak goes"):
        assert heading in md
    assert "a test run" in md and r["machine"]["cpu"] in md
    for t in r["targets"]:
        assert f"| {t['name']} |" in md
    assert f"{r['pixelcnnpp_sample']['cached_vs_naive']:.2f}x" in md


# ---- suites ------------------------------------------------------------------------


def test_the_command_line_names_the_suites_bench_runs():
    parser = build_parser()
    assert parser.parse_args(["bench"]).suite == "steps"
    for suite in bench.SUITES:
        assert parser.parse_args(["bench", "--suite", suite]).suite == suite
    # Every suite but those with reports of their own (gpu) renders into benchmarks.md.
    assert set(report.CONTEXTS) == set(bench.SUITES) - set(bench.OWN_REPORTS)
    assert set(bench.OWN_REPORTS) <= set(bench.SUITES)
    with pytest.raises(CommandLineError):
        parser.parse_args(["bench", "--suite", "nope"])


# The repository's report: its steps suite is the section the maf run must keep.
REPORT = Path(__file__).resolve().parents[1] / "results" / "benchmarks.json"


def test_the_repository_report_is_its_json_rendered():
    """results/benchmarks.md is what the templates make of results/benchmarks.json (the
    design A/Bs included): a template edited without re-rendering fails here."""
    doc = report.load(REPORT)
    assert doc["design_ab"] and all(ab["result"] and ab["code"] for ab in doc["design_ab"])
    assert report.markdown(doc) == REPORT.with_suffix(".md").read_text()


@pytest.fixture(scope="module")
def maf_quick(tmp_path_factory):
    """The maf suite's quick run into a folder holding the repository's steps results,
    written flat (as `benchmarks.json` was before suites)."""
    out = tmp_path_factory.mktemp("bench_maf")
    steps = report.load(REPORT)["suites"]["steps"]
    (out / "benchmarks.json").write_text(json.dumps(steps))
    main(["bench", "--suite", "maf", "--quick", "--out", str(out), "--note", "a maf test run"])
    doc = json.loads((out / "benchmarks.json").read_text())
    return steps, doc, (out / "benchmarks.md").read_text(), out


def test_the_maf_suite_keeps_the_steps_section(maf_quick):
    steps, doc, md, _ = maf_quick
    assert list(doc["suites"]) == ["steps", "maf"]
    assert doc["suites"]["steps"] == steps
    r = doc["suites"]["maf"]
    assert r["suite"] == "maf" and r["quick"] and r["note"] == "a maf test run"
    assert "--suite maf --quick" in r["command"]
    # Both suites rendered, each with its own provenance; every target of both.
    for heading in ("## Suite `steps`", "## fp32 matmul peak", "## PixelCNN++ training step", "## Glow",
                    "## Suite `maf`", "## MAF and IAF training steps", "## MAF sampling"):
        assert heading in md
    assert md.index("## Suite `steps`") < md.index("## Suite `maf`")
    for suite in (steps, r):
        assert f"Generated by `{suite['command']}` on {suite['date']}, commit {suite['git_commit']}" in md
    assert "a maf test run" in md and (not steps["note"] or steps["note"] in md)
    for t in steps["targets"] + r["targets"]:
        assert f"| {t['name']} |" in md
    assert f"{r['maf_sample']['cached_vs_tfp']:.2f}x" in md


def test_a_steps_run_keeps_the_maf_section(maf_quick, tmp_path):
    steps, doc, _, out = maf_quick
    shutil.copy(out / "benchmarks.json", tmp_path / "benchmarks.json")
    rerun = {**steps, "suite": "steps", "date": "a later date"}
    report.write(rerun, tmp_path)
    again = json.loads((tmp_path / "benchmarks.json").read_text())
    assert again["suites"] == {"steps": rerun, "maf": doc["suites"]["maf"]}
    md = (tmp_path / "benchmarks.md").read_text()
    assert "a later date" in md and f"on {doc['suites']['maf']['date']}" in md


def test_maf_parameters_match_tfps(maf_quick):
    r = maf_quick[1]["suites"]["maf"]
    model = r["config"]["maf"]["model"]
    t, i = r["maf_train"]["parameters"], r["iaf_train"]["parameters"]
    num_dims = r["iaf_train"]["num_dims"]
    assert num_dims == math.prod(r["maf_train"]["image_shape"])
    assert i["ours"] == i["tfp"] > 0
    assert t["ours_networks"] == t["tfp"] == i["tfp"]
    # Ours also learns one log-scale bound a dimension and layer.
    assert t["ours_log_scale_bounds"] == model["num_layers"] * num_dims
    assert t["ours"] == t["tfp"] + t["ours_log_scale_bounds"]


def test_maf_ratios_and_targets_come_from_the_raw_numbers(maf_quick):
    r = maf_quick[1]["suites"]["maf"]
    found = list(measurements(r))
    assert len(found) == 2 + 2 + 3  # MAF and IAF steps, ours and TFP; three samplers
    for m in found:
        assert m["seconds"] and all(positive(s) for s in m["seconds"]) and positive(m["first_call_seconds"])
        assert m["images_per_second"] == m["images"] / statistics.median(m["seconds"])

    def ips(m):
        return m["images"] / statistics.median(m["seconds"])

    for name in ("maf_train", "iaf_train"):
        row = r[name]
        assert positive(row["ours_vs_tfp"])
        assert row["ours_vs_tfp"] == pytest.approx(ips(row["ours"]) / ips(row["tfp"]), rel=1e-12)
    s = r["maf_sample"]
    for key, (a, b) in {"cached_vs_tfp": ("ours_cached", "tfp"), "naive_vs_tfp": ("ours_naive", "tfp"),
                        "cached_vs_naive": ("ours_cached", "ours_naive")}.items():
        assert positive(s[key]) and s[key] == pytest.approx(ips(s[a]) / ips(s[b]), rel=1e-12)
    assert r["targets"] == maf_suite.targets(r)
    assert [t["value"] for t in r["targets"]] == [r["maf_train"]["ours_vs_tfp"], r["iaf_train"]["ours_vs_tfp"]]
    assert [t["name"].split(" (")[0] for t in r["targets"]] == ["MAF training step >= TFP's",
                                                                 "IAF training step >= TFP's"]
    for t in r["targets"]:
        assert t["needed"] == 1.0 and t["met"] == (t["value"] >= 1.0) and "float32 both" in t["name"]
