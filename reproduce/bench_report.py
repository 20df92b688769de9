"""The benchmark's targets and its files: `benchmarks.json` and the table
`benchmarks.md`, both from the results `reproduce/bench.py` measures.

`benchmarks.json` is `{"suites": {NAME: results}}`: each suite's results (its sections,
targets and provenance) as its last run wrote them; a run replaces its own suite and
keeps the others. A file from before suites (one flat `steps` result) reads as
`{"suites": {"steps": ...}}`. `benchmarks.md` renders every suite present.
"""

import json
from pathlib import Path

from reproduce.flops import TRAIN_FACTOR
from zoo.files import write_json, write_text

PEAK_TARGET = 0.4  # of the fp32 matmul peak
BF16_PEAK_TARGET = 0.3  # of the bf16 matmul peak, timed in the same rounds


def shape_name(shape):
    return "x".join(map(str, shape))


def _target(name, value, needed, at_most=False):
    """A target row: `value` must reach `needed` (at least; with `at_most`, at most). A
    value of None (never measured, e.g. never reached) does not meet it."""
    met = value is not None and (value <= needed if at_most else value >= needed)
    return {"name": name, "value": value, "needed": needed, "met": bool(met),
            **({"at_most": True} if at_most else {})}


def suite_of(r):
    """A suite's name (results from before suites are the `steps` suite's)."""
    return r.get("suite", "steps")


def targets(r):
    """A suite's targets, each with its measured value (a ratio or a fraction of the peak)."""
    return {"steps": steps_targets, "maf": maf_targets, "quality": quality_targets}[suite_of(r)](r)


def steps_targets(r):
    s = r["pixelcnnpp_sample"]
    where = f"PixelCNN++ {shape_name(s['image_shape'])}, {s['images']} images"
    out = [_target(f"cached sampling >= 20x our naive sampler ({where})", s["cached_vs_naive"], 20.0),
           _target(f"cached sampling >= 20x TFP's PixelCNN.sample ({where})", s["cached_vs_tfp"], 20.0)]
    for row in r["pixelcnnpp_train"]:
        where = f"{shape_name(row['image_shape'])}, batch {row['batch']}, XLA off both"
        out.append(_target(f"PixelCNN++ training step >= 1.5x tfd.PixelCNN's ({where}, float32 both)",
                           row["ours_vs_tfp"], 1.5))
        out.append(_target(f"PixelCNN++ training step >= 1.5x tfd.PixelCNN's ({where}, ours with a bfloat16 "
                           f"network, TFP float32)", row["ours_bf16_vs_tfp"], 1.5))
    g = r["glow"]
    where = f"{shape_name(g['image_shape'])}, batch {g['batch']}, XLA off both"
    out.append(_target(f"Glow training step >= 1.2x tfb.Glow's ({where}, float32 both)",
                       g["train"]["ours_vs_tfp"], 1.2))
    out.append(_target(f"Glow training step >= 1.2x tfb.Glow's ({where}, ours with a bfloat16 network, TFP "
                       f"float32)", g["train"]["ours_bf16_vs_tfp"], 1.2))
    for name, p in r["preset_steps"].items():
        where = _preset(p, _chains(r, name))
        out.append(_target(f"{MODEL_NAMES[name]} training step >= 40% of the fp32 matmul peak ({where})",
                           p["fraction_of_matmul_peak"], PEAK_TARGET))
        out.append(_target(f"{MODEL_NAMES[name]} training step >= 30% of the bf16 matmul peak ({where})",
                           p["fraction_of_bf16_matmul_peak"], BF16_PEAK_TARGET))
    return out


def maf_targets(r):
    t, i = r["maf_train"], r["iaf_train"]
    nets = _made_sizes(r["config"]["maf"]["model"])
    return [
        _target(f"MAF training step >= TFP's ({shape_name(t['image_shape'])}, batch {t['batch']}, {nets}, "
                f"XLA off both, float32 both)", t["ours_vs_tfp"], 1.0),
        _target(f"IAF training step >= TFP's (D = {i['num_dims']}, batch {i['batch']}, {nets}, XLA off both, "
                f"float32 both)", i["ours_vs_tfp"], 1.0),
    ]


QUALITY_PAIRS = {"pixelcnnpp": ("PixelCNN++", "tfd.PixelCNN"), "glow": ("Glow", "tfb.Glow")}
QUALITY_FRACTION = 0.5


def _minutes(seconds):
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def quality_targets(r):
    """Per pair: the training seconds ours needs to reach TFP's final bits/dim, as a
    fraction of TFP's seconds, at most one half."""
    cfg, out = r["config"], []
    for name, (ours, tfp) in QUALITY_PAIRS.items():
        q = r.get(f"{name}_quality")
        if q is None:
            continue
        row = _target(
            f"ours reaches TFP's final bits/dim in at most half TFP's time ({ours} `cpu` preset vs {tfp}, "
            f"{cfg['dataset']}, batch {q['batch']}, {_minutes(cfg['budget_seconds'])} a side)",
            q["fraction_of_tfp_time"], QUALITY_FRACTION, at_most=True)
        # Reached by our first checkpoint: the fraction is an upper bound.
        out.append({**row, "upper_bound": True} if q.get("ours_reached_by_first_checkpoint") else row)
    return out


def _made_sizes(model):
    widths = model["hidden_units"]
    width = (f"{len(widths)}x{widths[0]}" if len(set(widths)) == 1 else "-".join(map(str, widths)))
    return f"{model['num_layers']} layers of {width} {model['activation']} MADEs"


MODEL_NAMES = {"pixelcnnpp": "PixelCNN++", "glow": "Glow"}


def _chains(r, name):
    """The `training_chains` a `steps` run's preset model `name` trained with."""
    return r["config"]["presets"][name]["model"].get("training_chains", 1)


def _preset(p, chains=1):
    """Where a preset step was measured, for a target's name."""
    return (f"cpu preset: {shape_name(p['image_shape'])}, batch {p['batch']}, {p['precision']} network, "
            + (f"{chains} training chains, " if chains > 1 else "") + "XLA off")


def _ips(m):
    return f"{m['images_per_second']:.3g}"


def _pct(x):
    return f"{100 * x:.1f}%"


def _mb(m):
    return "n/a" if m["peak_memory_mb"] is None else f"{m['peak_memory_mb']:.1f}"


# The suites' one-line titles and their order in the report (any other suite follows, by name).
SUITE_TITLES = {"steps": "PixelCNN++, Glow and the causal-conv ARM against TFP's, and the matmul peak",
                "maf": "MAF and IAF against TFP's `MaskedAutoregressiveFlow`",
                "quality": "bits/dim reached per second of training, PixelCNN++ and Glow against TFP's"}
SUITE_ORDER = ("steps", "maf", "quality")


def ordered(names):
    return sorted(names, key=lambda n: (SUITE_ORDER.index(n) if n in SUITE_ORDER else len(SUITE_ORDER), n))


def _format_target(t):
    if t.get("at_most"):  # a fraction of the other side's time
        bound = "<= " if t.get("upper_bound") else ""
        value = "never" if t["value"] is None else f"{bound}{t['value']:.2f} of TFP's time"
        return value, f"<= {t['needed']:.2f}"
    fraction = "matmul peak" in t["name"]
    value = _pct(t["value"]) if fraction else f"{t['value']:.2f}x"
    needed = _pct(t["needed"]) if fraction else f"{t['needed']:.1f}x"
    return value, needed


def markdown(doc):
    """The report of every suite in `doc` (`{"suites": {NAME: results}}`, or one suite's
    results): the targets of all, then each suite with its provenance and sections."""
    suites = doc["suites"] if "suites" in doc else {suite_of(doc): doc}
    names = ordered(suites)
    lines = [
        "# Benchmarks: the zoo's models against TFP's",
        "",
        "Generated by `python -m reproduce bench --suite NAME` (`reproduce/bench.py`), one suite at a time: "
        "a run rewrites its own suite's sections and keeps the others', each under the command, date, commit, "
        "machine and load it ran with; do not edit by hand. Suites here: "
        + "; ".join(f"`{n}` ({SUITE_TITLES.get(n, n)})" for n in names) + ".",
        "",
        "Every number is the median of the repetitions in `benchmarks.json` (after warm-up calls that "
        "trace and compile); the two sides of a comparison ran in one process, their calls interleaved, so "
        "the ratios compare like with like while absolute times depend on the load. XLA-compiled steps ran "
        "in rounds of their own after the others (right after an XLA call, XLA's CPU runtime slows the "
        "next TensorFlow call).",
        "",
        "## Targets",
        "",
        "| target | measured | needed | met | suite |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        for t in suites[name]["targets"]:
            value, needed = _format_target(t)
            lines.append(f"| {t['name']} | {value} | {needed} | {'yes' if t['met'] else '**no**'} | `{name}` |")
    if "steps" in suites:
        lines += [
            "",
            "The PixelCNN++ and Glow `cpu` presets train with bfloat16 networks (likelihoods in float32): "
            "the rows \"ours with a bfloat16 network\" compare our step as they train it with TFP's, the "
            "rows \"float32 both\" at equal precision.",
        ]
    lines.append("")
    for name in names:
        lines += RENDERERS[name](suites[name])
    return "\n".join(lines)


def provenance(r):
    """A suite's heading and how, when and where it ran: markdown lines."""
    mach, name = r["machine"], suite_of(r)
    lines = [
        f"## Suite `{name}`: {SUITE_TITLES.get(name, name)}",
        "",
        f"Generated by `{r['command']}` on {r['date']}, commit {r['git_commit']}, in {r['wall_seconds'] / 60:.1f} min.",
        "",
        f"Machine: {mach['cpu']}, {mach['cores']} cores ({mach['cores_usable']} usable); Python {mach['python']}, "
        f"TensorFlow {mach['tensorflow']}, Keras {mach['keras']}, TFP {mach['tensorflow_probability']} "
        f"(tf_keras {mach['tf_keras']}). TF's threads: {_threads(mach)}. Load average (1 min): "
        f"{mach['load_average_1min_at_start']:.2f} at the start, {mach['load_average_1min_at_end']:.2f} at the end.",
        "",
    ]
    if r["note"]:
        lines += [f"**Conditions:** {r['note']}", ""]
    return lines


def steps_markdown(r):
    peak = r["matmul_peak"]
    lines = provenance(r)
    lines += [
        f"## fp32 matmul peak: {peak['gflops']:.1f} GFLOP/s",
        "",
        f"{_copies(peak)} of two {peak['size']}x{peak['size']} float32 matrices (2 n^3 FLOPs each): median "
        f"{peak['gflops']:.1f} GFLOP/s, best {peak['gflops_best']:.1f} GFLOP/s over {len(peak['seconds'])} calls "
        f"timed alone. The same matmul is timed again in the rounds of every training-step comparison, "
        f"interleaved with the steps; a step's fraction of the peak divides its GFLOP/s by that matmul's "
        f"median, so both saw the same load.",
        "",
        "## PixelCNN++ training step: ours vs `tfp.distributions.PixelCNN`",
        "",
        _hyper(r["config"]["pixelcnnpp"]) + " TFP's network convolves with masked 3x3 kernels (its default "
        "`receptive_field_dims`) where ours shifts 2x3 and 2x2 ones (openai/pixel-cnn's): more parameters "
        "and FLOPs at the same hyper-parameters.",
        "",
        "| image | batch | ours img/s | ours XLA img/s | ours bf16 img/s | TFP img/s | ours / TFP "
        "| ours bf16 / TFP | XLA speedup | parameters ours / TFP "
        "| GFLOP per step ours / TFP | matmul GFLOP/s (same rounds) | ours % of peak (XLA off / on) "
        "| peak MB ours / XLA / TFP "
        "| first call s ours / XLA / TFP |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["pixelcnnpp_train"]:
        xla = row.get("ours_xla")
        f = row["flops"]
        speedup = f"{row['xla_speedup']:.2f}x" if xla else "-"
        lines.append(
            f"| {shape_name(row['image_shape'])} | {row['batch']} | {_ips(row['ours'])} | "
            f"{_ips(xla) if xla else '-'} | {_ips(row['ours_bf16'])} | {_ips(row['tfp'])} | "
            f"{row['ours_vs_tfp']:.2f}x | {row['ours_bf16_vs_tfp']:.2f}x | {speedup} | "
            f"{row['parameters']['ours']:,} / {row['parameters']['tfp']:,} | "
            f"{f['ours']['flops_per_step'] / 1e9:.2f} / {f['tfp']['flops_per_step'] / 1e9:.2f} | "
            f"{row['matmul']['gflops']:.1f} | "
            f"{_pct(f['ours']['fraction_of_matmul_peak'])} / "
            f"{_pct(f['ours_xla']['fraction_of_matmul_peak']) if xla else '-'} | "
            f"{_mb(row['ours'])} / {_mb(xla) if xla else '-'} / {_mb(row['tfp'])} | "
            f"{_first(row['ours'])} / {_first(xla) if xla else '-'} / {_first(row['tfp'])} |")
    s = r["pixelcnnpp_sample"]
    lines += [
        "",
        f"## PixelCNN++ sampling, {s['images']} images of {shape_name(s['image_shape'])}",
        "",
        "Same model as the training step's. Ours: `model.sample(n, method=...)`; TFP: `dist.sample(n)` in a "
        "`tf.function`; each warmed up once on one image (n is a tensor: no retracing); a sampler's timed calls "
        f"stop after {r['config']['pixelcnnpp']['sample_budget_s']} s (one call at least).",
        "",
        "| sampler | calls | median s | images/s |",
        "|---|---|---|---|",
    ]
    for name, label in [("ours_cached", "ours, cached"), ("ours_naive", "ours, naive"), ("tfp", "TFP `sample()`")]:
        lines.append(f"| {label} | {len(s[name]['seconds'])} | {s[name]['median_seconds']:.2f} | {_ips(s[name])} |")
    lines += ["", f"Cached / naive: {s['cached_vs_naive']:.2f}x; cached / TFP: {s['cached_vs_tfp']:.2f}x; "
                  f"naive / TFP: {s['naive_vs_tfp']:.2f}x."]
    g = r["glow"]
    gt, gs = g["train"], g["sample"]
    lines += [
        "",
        "## Glow: ours vs `tfp.bijectors.Glow`",
        "",
        _hyper(r["config"]["glow"]) + " TFP: `tfb.Glow(num_glow_blocks=num_scales, num_steps_per_block=depth, "
        "coupling_bijector_fn=GlowDefaultNetwork(num_hidden=hidden_channels), exit_bijector_fn="
        "GlowDefaultExitNetwork)` under a `TransformedDistribution` with a standard normal base.",
        "",
        "| | ours | ours bf16 | ours XLA | TFP | ours / TFP | ours bf16 / TFP | XLA speedup |",
        "|---|---|---|---|---|---|---|---|",
        f"| training step, img/s (batch {g['batch']}) | {_ips(gt['ours'])} | {_ips(gt['ours_bf16'])} | "
        f"{_ips(gt['ours_xla'])} | {_ips(gt['tfp'])} | {gt['ours_vs_tfp']:.2f}x | {gt['ours_bf16_vs_tfp']:.2f}x | "
        f"{gt['xla_speedup']:.2f}x |",
        f"| training step, peak MB | {_mb(gt['ours'])} | {_mb(gt['ours_bf16'])} | {_mb(gt['ours_xla'])} | "
        f"{_mb(gt['tfp'])} | | | |",
        f"| GFLOP per step | {gt['flops']['ours']['flops_per_step'] / 1e9:.2f} | | | "
        f"{gt['flops']['tfp']['flops_per_step'] / 1e9:.2f} | | | |",
        f"| matmul GFLOP/s (same rounds) | {gt['matmul']['gflops']:.1f} | | | | | | |",
        f"| % of the matmul peak | {_pct(gt['flops']['ours']['fraction_of_matmul_peak'])} | "
        f"{_pct(gt['flops']['ours_bf16']['fraction_of_matmul_peak'])} | "
        f"{_pct(gt['flops']['ours_xla']['fraction_of_matmul_peak'])} | "
        f"{_pct(gt['flops']['tfp']['fraction_of_matmul_peak'])} | | | |",
        f"| parameters | {gt['parameters']['ours']:,} | | | {gt['parameters']['tfp']:,} | | | |",
        f"| training step, first call s (trace) | {_first(gt['ours'])} | {_first(gt['ours_bf16'])} | "
        f"{_first(gt['ours_xla'])} | {_first(gt['tfp'])} | | | |",
        f"| sampling {gs['images']} images, img/s | {_ips(gs['ours'])} | | | {_ips(gs['tfp'])} | "
        f"{gs['ours_vs_tfp']:.2f}x | | |",
    ]
    lines += [
        "",
        "## Training steps at the `cpu` presets' sizes",
        "",
        "Our PixelCNN++ and Glow training steps as their `cpu` presets train on 8-bit MNIST: the preset's "
        "model (with its `mixed_precision` and `training_chains`: the batch as that many independent "
        "chains of one graph), its batch, XLA off. The fp32 and the bf16 matmul ran in the "
        "same rounds. A bfloat16 network's FLOPs are counted as any (same convolutions); a step's "
        "fractions divide its GFLOP/s by the fp32 and by the bf16 matmul's.",
        "",
        "| model | image | batch | network | chains | img/s | GFLOP per step | GFLOP/s | fp32 matmul GFLOP/s "
        "| % of fp32 peak | bf16 matmul GFLOP/s | % of bf16 peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in r["preset_steps"].items():
        lines.append(
            f"| {MODEL_NAMES[name]} | {shape_name(p['image_shape'])} | {p['batch']} | {p['precision']} | "
            f"{_chains(r, name)} | "
            f"{_ips(p['ours'])} | {p['flops_per_step'] / 1e9:.2f} | {p['gflops']:.1f} | "
            f"{p['matmul']['gflops']:.1f} | {_pct(p['fraction_of_matmul_peak'])} | "
            f"{p['matmul_bf16']['gflops']:.1f} | {_pct(p['fraction_of_bf16_matmul_peak'])} |")
    a = r["arm_sample"]
    lines += [
        "",
        f"## Causal-conv ARM sampling, {a['images']} images of {shape_name(a['image_shape'])}",
        "",
        _hyper(r["config"]["arm"]),
        "",
        f"Cached: {_ips(a['cached'])} img/s; naive: {_ips(a['naive'])} img/s; cached / naive "
        f"{a['cached_vs_naive']:.2f}x.",
        "",
        "## How it was measured",
        "",
        "- Training step: the same `tf.function` for every model: a `GradientTape` over the batch's mean "
        "negative log-likelihood in bits/dim and one Adam update (Keras 3's Adam for ours, tf_keras' for "
        "TFP's networks); XLA (`jit_compile`) off unless the column says XLA. Random integer images.",
        "- Peak memory: TF's CPU allocator (`tf.config.experimental.get_memory_info('CPU:0')`), its peak "
        "during a timed call above the bytes held before it (activations, gradients and temporaries; the "
        "weights and optimizer slots are held before). XLA may keep some temporaries outside this allocator.",
        f"- FLOPs: counted from the shapes of the convolutions and matmuls of one forward pass "
        f"(`reproduce/flops.py`: 2 * N * H_out * W_out * kh * kw * C_in * C_out per convolution), times "
        f"{TRAIN_FACTOR} for forward and backward; elementwise work is not counted. Counted in the traced "
        f"graph, before Grappler's rewrites (which may merge work a graph repeats).",
        "",
        "## Where the rest of the peak goes",
        "",
        _rest(r["config"]),
        "",
        "## A/Bs behind design choices (measured outside this run, on 2 CPU cores)",
        "",
        *[f"- {line}" for line in DESIGN_AB],
        "",
    ]
    return lines


def maf_markdown(r):
    cfg = r["config"]["maf"]
    model, t, i, s = cfg["model"], r["maf_train"], r["iaf_train"], r["maf_sample"]
    pt, pi = t["parameters"], i["parameters"]
    shape, num_dims = shape_name(t["image_shape"]), i["num_dims"]
    lines = provenance(r)
    lines += [
        "## MAF and IAF training steps: ours vs `tfp.bijectors.MaskedAutoregressiveFlow`",
        "",
        (f"Quick run (tiny sizes, for the tests): {shape}, D = {num_dims}" if r["quick"] else
         f"The `maf` `cpu` preset's sizes on 8-bit MNIST ({shape}, D = {num_dims})")
        + f": {_made_sizes(model)}, float32, XLA off. Like for like: a standard normal base on both sides "
        f"and no batch norm (the preset trains with a MADE mixture-of-Gaussians base, which TFP has no "
        f"counterpart for). TFP: a "
        f"`tfd.TransformedDistribution` of a standard normal through a `tfb.Chain` of "
        f"`tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=tfb.AutoregressiveNetwork(params=2, "
        f"hidden_units={list(model['hidden_units'])}, event_shape=[{num_dims}], "
        f"activation=\"{model['activation']}\"))`, the order reversed between layers (`tfb.Permute`); ours: "
        f"`zoo.models.MAF(..., base=\"normal\", batch_norm=False)`, its MADEs' orders alternating natural "
        f"and reversed. Both score the same dequantized pixels through `zoo.bijectors.logit_preprocess` "
        f"(alpha = {model['alpha']:g}; its log-det counted on both sides); the step minimizes bits/dim "
        f"(ours: `model(x, training=True)`).",
        "",
        f"IAF: the layers in the sampling direction (one network pass a layer) on eps ~ N(0, I) "
        f"`[batch, {num_dims}]`, loss mean(log N(eps) - log|det dz/deps| - log N(z)) (a one-sample KL to the "
        f"standard normal); ours: `zoo.bijectors.inverse_autoregressive_flow` of `zoo.layers.MADE`s, TFP: "
        f"`tfb.Invert(tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(...)))`, reversed between layers.",
        "",
        f"Parameters: the networks match exactly. Our MAF also bounds each layer's log-scale as "
        f"scale * tanh(r), a learned scale a dimension ({pt['ours_log_scale_bounds']:,} parameters, an "
        f"elementwise tanh more work than TFP's unbounded log-scale); our IAF here leaves it unbounded, "
        f"as TFP's.",
        "",
        "| training step | batch | ours img/s | TFP img/s | ours / TFP | parameters ours / TFP | peak MB ours / TFP "
        "| first call s ours / TFP |",
        "|---|---|---|---|---|---|---|---|",
        f"| MAF | {t['batch']} | {_ips(t['ours'])} | {_ips(t['tfp'])} | {t['ours_vs_tfp']:.2f}x | "
        f"{pt['ours']:,} ({pt['ours_networks']:,} in the MADEs) / {pt['tfp']:,} | {_mb(t['ours'])} / "
        f"{_mb(t['tfp'])} | {_first(t['ours'])} / {_first(t['tfp'])} |",
        f"| IAF | {i['batch']} | {_ips(i['ours'])} | {_ips(i['tfp'])} | {i['ours_vs_tfp']:.2f}x | "
        f"{pi['ours']:,} / {pi['tfp']:,} | {_mb(i['ours'])} / {_mb(i['tfp'])} | "
        f"{_first(i['ours'])} / {_first(i['tfp'])} |",
        "",
        f"## MAF sampling, {s['images']} images of {shape_name(s['image_shape'])}",
        "",
        "The same sizes, untrained models (sampling costs the same whatever the weights). D sequential "
        "network passes a layer. Ours, cached: `model.sample(n)`, each MADE's own `tf.while_loop` "
        "(`MADE.sequential`: a pass adds one row of the first layer's kernel to its pre-activation and "
        "computes only the new dimension's outputs); ours, naive: `method=\"naive\"`, TFP's loop through our "
        "bijector (the whole MADE a pass); TFP: `dist.sample(n)` in a `tf.function`. Each warmed up once on "
        f"one image (n is a tensor: no retracing); a sampler's timed calls stop after "
        f"{cfg['sample_budget_s']} s (one call at least).",
        "",
        "| sampler | calls | median s | images/s |",
        "|---|---|---|---|",
    ]
    for name, label in [("ours_cached", "ours, cached"), ("ours_naive", "ours, naive"),
                        ("tfp", "TFP `sample()`")]:
        lines.append(f"| {label} | {len(s[name]['seconds'])} | {s[name]['median_seconds']:.2f} | {_ips(s[name])} |")
    lines += ["", f"Cached / TFP: {s['cached_vs_tfp']:.2f}x; naive / TFP: {s['naive_vs_tfp']:.2f}x; "
                  f"cached / naive: {s['cached_vs_naive']:.2f}x (reported; no target).", ""]
    return lines


# One-off measurements that chose how a library piece computes (the code states the choice).
DESIGN_AB = [
    "Cached sampling of the Gated PixelCNN (`zoo/models/pixelcnn_sampling.py`): 16 binarized-MNIST "
    "samples from the `cpu` preset's model (bfloat16), median of 3 after a warm-up, one process: 37x "
    "faster than the naive loop (27x-75x over three runs on heavily shared cores), the images identical.",
    "Glow's invertible 1x1 conv as a 1x1 `tf.nn.conv2d` where the batch is one axis "
    "(`zoo/bijectors/invertible_conv.py`): the `cpu` preset's training step 1.16x faster than the same "
    "product as an einsum (a batched matmul with C <= 8; oneDNN), in-process A/B, 12 interleaved rounds.",
    "PixelCNN++'s concat_elu and gate as one XLA fusion each in a 16-bit network "
    "(`zoo/layers/gated_resnet.py`): TF's bfloat16 Elu and EluGrad kernels take twice as long as the "
    "float32 ones (19% of the bf16 bench step in a TF profile). In-process A/Bs, bench config, batch 16, "
    "bfloat16, one thread per op and two ops at a time: training steps 1.11x faster at 28x28x1, 1.17x at "
    "32x32x3 (1.05x at TF's default threads); float32 steps 2% slower fused, and the cached sampler's "
    "per-pixel work 0.76x (an XLA launch costs more than the op), so both keep TF's kernels.",
    "Training chains (`training_chains=2`, `zoo/models/base.py`: the batch's halves as two independent "
    "chains of one graph, the same loss and gradients): the `cpu` presets' steps (this suite's models and "
    "batches), in-process A/B, 3 warm-ups, 12 interleaved rounds, idle cores. One thread per op and two "
    "ops at a time: Glow 1.39x (285 -> 395 img/s), PixelCNN++ 1.13x (74.7 -> 84.5); four chains 1.28x "
    "and 1.07x. TF's default threads: Glow 1.00x, PixelCNN++ 0.89x (and unchained 80.8 img/s, about "
    "what two chains reach with one thread per op), so only Glow's preset trains two chains.",
]


def _threads(mach):
    """TF's thread pools as the run set them (0: TF's default, all cores)."""
    def pool(n):
        return "TF's default" if n == 0 else str(n)
    return (f"{pool(mach['intra_op_threads'])} per op (intra-op), "
            f"{pool(mach['inter_op_threads'])} ops at a time (inter-op)")


def _copies(peak):
    n = peak.get("copies", 1)
    return "`tf.linalg.matmul`" if n == 1 else f"{n} independent `tf.linalg.matmul`s in one call, side by side,"


def _first(m):
    return f"{m['first_call_seconds']:.0f}"


def _rest(cfg):
    p, g = cfg["pixelcnnpp"], cfg["glow"]
    return (
        f"Not measured op by op; the likely causes. The peak is one large square matmul. A training step "
        f"runs many small convolutions instead: "
        f"PixelCNN++'s {p['model']['nr_filters']} filters make matrices of {p['model']['nr_filters']} to "
        f"{2 * p['model']['nr_filters']} columns, Glow's couplings {g['model']['hidden_channels']}, on batches "
        f"of {p['batch']} and {g['batch']} images at a few resolutions, too small for oneDNN's best blocking; "
        f"and a step spends time on work the counter does not count: concat_elu, gates, weight normalization, "
        f"the logistic mixture's log-probabilities, the shifted convolutions' pads and crops (PixelCNN++); "
        f"actnorm, squeezes, splits and log-determinants (Glow); Adam's update of every weight. "
        f"A profile taken outside this run (TF profiler op self-times, 28x28x1, batch 16, float32, "
        f"2026-11-29) agrees: PixelCNN++ spent 58% of its busy core time in convolutions, 18% in "
        f"concat_elu and its gradient (concat, elu, slices), 7% in pads and crops, and 9% of the two "
        f"cores idle; Glow 61% in convolutions and 1x1 einsums and 31% idle (a chain of small ops "
        f"leaves a core waiting; batch 64, the preset's, fills them better).")


def _hyper(cfg):
    model = ", ".join(f"{k}={v}" for k, v in cfg["model"].items())
    return f"Hyper-parameters: {model}; {cfg['num_levels']} pixel levels."


def _bpd(x):
    return "-" if x is None else f"{x:.4f}"


def _secs(x):
    return "never" if x is None else f"{x:.0f}"


def _networks(cfg):
    """Our sides' network precisions in words, e.g. "bfloat16 networks"."""
    kinds = {pair: cfg[pair]["model"].get("mixed_precision") or "float32" for pair in ("pixelcnnpp", "glow")}
    if len(set(kinds.values())) == 1:
        return f"{kinds['glow']} networks"
    return f"a {kinds['pixelcnnpp']} PixelCNN++ network and a {kinds['glow']} Glow network"


def quality_markdown(r):
    cfg = r["config"]
    lines = provenance(r)
    lines += [
        "## Time to quality: validation bits/dim against training seconds, ours vs TFP's",
        "",
        (f"Quick run (tiny models, for the tests) on {cfg['dataset']}" if r["quick"] else
         f"Our PixelCNN++ and Glow `cpu` presets as they train on 8-bit MNIST ({cfg['dataset']})")
        + f", each against TFP's model at the same sizes, {_minutes(cfg['budget_seconds'])} of training a "
        f"side. Both sides of a pair: the same batches in the same order (one seeded stream, "
        f"`zoo.training.epoch_batches`, as the preset trains; each side reads batch k at its step k), the "
        f"preset's optimizer built alike for each (`zoo.training.make_optimizer`: learning rate, warm-up, "
        f"per-step decay, Polyak averaging, clipping), the same step function (a GradientTape over the "
        f"batch's mean bits/dim and one update; XLA off, as the presets train on CPU). Training alternates "
        f"in slices of {cfg['slice_steps']} steps, the side with fewer training seconds going next, so "
        f"both see the same load. A side's clock counts its steps after the first (the first traces; its "
        f"seconds are shown apart); every {_minutes(cfg['checkpoint_seconds'])} of its own clock and at the "
        f"end of the budget it is evaluated, off the clock, on the same {cfg['eval_images']} validation "
        f"images in float32 with its Polyak-averaged weights (the flows: mean over the same number of fixed "
        f"dequantization draws).",
        "",
        "Where the recipes differ: ours trains with " + _networks(cfg) + " (likelihood float32; the "
        "preset's bfloat16 where this machine computes it natively, as `python -m reproduce`), TFP's in "
        "float32 (neither TFP model has a 16-bit path); our PixelCNN++ shifts 2x3 and 2x2 kernels where "
        "`tfd.PixelCNN` masks 3x3 ones; our Glow puts actnorm after its hidden convolutions and "
        "preprocesses with a logit (the preset's), `tfb.Glow` has `GlowDefaultNetwork`'s plain biased "
        "convolutions and pixels scaled to [-1/2, 1/2).",
        "",
        f"![bits/dim against training minutes]({FIGURE_PATH})",
        "",
        "| pair | batch | parameters ours / TFP | steps ours / TFP | first step s ours / TFP | final bits/dim "
        "ours / TFP | gap (ours - TFP) | ours' seconds to TFP's final | TFP's seconds | fraction |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for name, (ours_name, tfp_name) in QUALITY_PAIRS.items():
        q = r.get(f"{name}_quality")
        if q is None:
            continue
        o, t = q["ours"], q["tfp"]
        gap = "-" if q["gap_bits_per_dim"] is None else f"{q['gap_bits_per_dim']:+.4f}"
        bound = "<= " if q.get("ours_reached_by_first_checkpoint") else ""
        fraction = "-" if q["fraction_of_tfp_time"] is None else f"{bound}{q['fraction_of_tfp_time']:.2f}"
        lines.append(
            f"| {ours_name} vs {tfp_name} | {q['batch']} | {o['parameters']:,} / {t['parameters']:,} | "
            f"{o['steps']:,} / {t['steps']:,} | {o['first_step_seconds']:.0f} / {t['first_step_seconds']:.0f} | "
            f"{_bpd(o['final_bits_per_dim'])} / {_bpd(t['final_bits_per_dim'])} | {gap} | "
            f"{'' if q['ours_seconds_to_tfp_final'] is None else bound}{_secs(q['ours_seconds_to_tfp_final'])} | "
            f"{_secs(q['tfp_seconds_to_final'])} | {fraction} |")
        notes += [f"{ours_name if side is o else tfp_name} stopped at a non-finite loss, step "
                  f"{side['diverged_at_step']}." for side in (o, t) if side["diverged_at_step"] is not None]
    if notes:
        lines += ["", *notes]
    lines += ["", "Gap: ours' final bits/dim minus TFP's (negative: ours lower). Ours' seconds to TFP's "
              "final: the first time our curve reaches TFP's final bits/dim, linearly interpolated between "
              "our checkpoints (never: not within the budget; <=: already at our first checkpoint, so at most "
              "that); fraction: those seconds over TFP's."]
    for name, (ours_name, tfp_name) in QUALITY_PAIRS.items():
        q = r.get(f"{name}_quality")
        if q is None:
            continue
        lines += ["", f"### {ours_name} vs {tfp_name}: the curves", "",
                  "| checkpoint s | ours s | ours steps | ours bits/dim | TFP s | TFP steps | TFP bits/dim |",
                  "|---|---|---|---|---|---|---|"]
        tfp_at = {p["checkpoint_seconds"]: p for p in q["tfp"]["curve"]}
        ours_at = {p["checkpoint_seconds"]: p for p in q["ours"]["curve"]}
        for mark in sorted(set(tfp_at) | set(ours_at)):
            o, t = ours_at.get(mark), tfp_at.get(mark)
            lines.append(f"| {mark:g} | " + " | ".join(
                "- | - | -" if p is None else f"{p['seconds']:.0f} | {p['steps']:,} | {p['bits_per_dim']:.4f}"
                for p in (o, t)) + " |")
    lines.append("")
    return lines


FIGURE_PATH = "figures/bench-quality.png"  # bench_quality.FIGURE, relative to the report

RENDERERS = {"steps": steps_markdown, "maf": maf_markdown, "quality": quality_markdown}


def load(path):
    """`{"suites": {NAME: results}}` from a `benchmarks.json` (a flat file from before
    suites is the `steps` suite); an empty one where there is no file."""
    path = Path(path)
    if not path.exists():
        return {"suites": {}}
    doc = json.loads(path.read_text())
    return doc if "suites" in doc else {"suites": {suite_of(doc): doc}}


def write(results, out):
    """Puts one suite's `results` into `out/benchmarks.json` (replacing that suite's
    previous results, keeping the others') and renders `out/benchmarks.md` from every
    suite there; both written atomically. Returns their paths."""
    out = Path(out)
    doc = load(out / "benchmarks.json")
    doc["suites"][suite_of(results)] = results
    doc["suites"] = {name: doc["suites"][name] for name in ordered(doc["suites"])}
    return [write_json(out / "benchmarks.json", doc), write_text(out / "benchmarks.md", markdown(doc))]
