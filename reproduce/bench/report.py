"""`benchmarks.json` (`{"suites": {NAME: results}, "design_ab": [one-off A/Bs behind design choices]}`), and
`benchmarks.md` and a GPU check's `gpu.md` rendered through `templates/`.

A template is Markdown with `str.format` fields (`{row[ours]:ips}`; ending in `?`: None where a key is missing; None
shows as "-"), the formats of `FORMATS`, a boolean's words (`{r[quick]:tiny, {x}|full}`), and lines `{for X in
FIELD}`, `{if [not] FIELD}`, `{else}`, `{end}` that repeat or choose the lines up to their `{end}`.
"""

import json
import re
import string
from pathlib import Path

from zoo.files import write_json, write_text

TEMPLATES = Path(__file__).with_name("templates")
FIGURE = "figures/bench-quality.png"  # the quality suite's figure, relative to the report
MODELS = {"pixelcnnpp": ("PixelCNN++", "tfd.PixelCNN"), "glow": ("Glow", "tfb.Glow")}  # ours, TFP's counterpart
SUITE_TITLES = {"steps": "PixelCNN++, Glow and the causal-conv ARM against TFP's, and the matmul peak",
                "maf": "MAF and IAF against TFP's `MaskedAutoregressiveFlow`",
                "quality": "bits/dim reached per second of training, PixelCNN++ and Glow against TFP's"}


def shape_name(shape):
    return "x".join(map(str, shape))


def minutes(seconds):
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def made_sizes(model):
    widths = model["hidden_units"]
    width = f"{len(widths)}x{widths[0]}" if len(set(widths)) == 1 else "-".join(map(str, widths))
    return f"{model['num_layers']} layers of {width} {model['activation']} MADEs"


def target(name, value, needed, at_most=False):
    """A target: `value` must reach `needed` (`at_most`: stay at or below it); None (e.g. never reached) fails."""
    met = value is not None and (value <= needed if at_most else value >= needed)
    return {"name": name, "value": value, "needed": needed, "met": bool(met), **({"at_most": True} if at_most else {})}


def target_cells(t):
    """(measured, needed) as the report shows a target."""
    if t.get("at_most"):  # a fraction of TFP's time
        bound = "<= " if t.get("upper_bound") else ""
        return "never" if t["value"] is None else f"{bound}{t['value']:.2f} of TFP's time", f"<= {t['needed']:.2f}"
    if "matmul peak" in t["name"]:
        return FORMATS["pct"](t["value"]), FORMATS["pct"](t["needed"])
    return FORMATS["x"](t["value"]), f"{t['needed']:.1f}x"


# ---- the renderer ------------------------------------------------------------------

FORMATS = {
    "ips": lambda m: f"{m['images_per_second']:.3g}", "first": lambda m: f"{m['first_call_seconds']:.0f}",
    "mb": lambda m: "n/a" if m["peak_memory_mb"] is None else f"{m['peak_memory_mb']:.1f}",
    "len": len, "pct": lambda x: f"{100 * x:.1f}%", "x": lambda x: f"{x:.2f}x", "giga": lambda x: f"{x / 1e9:.2f}",
    "mins": lambda seconds: f"{seconds / 60:.1f}", "duration": minutes, "secs": lambda x: f"{x:.0f}",
    "shape": shape_name, "kv": lambda d: ", ".join(f"{k}={v}" for k, v in d.items()), "made": made_sizes,
    "threads": lambda n: "TF's default" if n == 0 else str(n),
}
NONE = {"secs": "never"}  # how a named format shows None (others: "-")
_BLOCK = re.compile(r"\{(for (\w+) in (\S+)|if (not )?(\S+)|else|end)\}")


class _Formatter(string.Formatter):
    def get_field(self, field_name, args, kwargs):
        try:
            return super().get_field(field_name.rstrip("?"), args, kwargs)
        except (KeyError, IndexError, TypeError):
            if field_name.endswith("?"):
                return None, field_name
            raise

    def format_field(self, value, spec):
        if "|" in spec:  # "yes|no": a boolean's words
            return spec.split("|")[0 if value else 1]
        if value is None:
            return NONE.get(spec, "-")
        return str(FORMATS[spec](value)) if spec in FORMATS else format(value, spec)


_FORMATTER = _Formatter()


def _parse(lines, i=0):
    """(nodes, next line, the word that ended them): a node is a line or (head, body, else)."""
    nodes = []
    while i < len(lines):
        m = _BLOCK.fullmatch(lines[i])
        i += 1
        if m is None:
            nodes.append(lines[i - 1])
        elif m.group(1) in ("else", "end"):
            return nodes, i, m.group(1)
        else:
            body, i, word = _parse(lines, i)
            other, i, word = _parse(lines, i) if word == "else" else ([], i, word)
            if word != "end":
                raise ValueError(f"template block {lines[i - 1]!r} has no {{end}}.")
            nodes.append((m, body, other))
    return nodes, i, None


def _emit(nodes, context):
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(_FORMATTER.vformat(node, (), context))
            continue
        m, body, other = node
        if m.group(2):  # for NAME in FIELD
            for item in _FORMATTER.get_field(m.group(3), (), context)[0]:
                out += _emit(body, {**context, m.group(2): item})
        else:
            value = bool(_FORMATTER.get_field(m.group(5), (), context)[0])
            out += _emit(body if value != bool(m.group(4)) else other, context)
    return out


def render(name, **context):
    """The lines of template `templates/NAME.md` filled from `context`."""
    nodes, _, word = _parse((TEMPLATES / f"{name}.md").read_text().splitlines())
    if word is not None:
        raise ValueError(f"template {name}: {{{word}}} outside a block.")
    return _emit(nodes, context)


# ---- what each suite's template reads beside its results ---------------------------


def _steps(r):
    from reproduce.bench.flops import TRAIN_FACTOR
    copies = r["matmul_peak"].get("copies", 1)
    return {"copies": "`tf.linalg.matmul`" if copies == 1 else
            f"{copies} independent `tf.linalg.matmul`s in one call, side by side,",
            "concat_channels": 2 * r["config"]["pixelcnnpp"]["model"]["filters"], "train_factor": TRAIN_FACTOR,
            "presets": [{**p, "model_name": MODELS[name][0],
                         "chains": r["config"]["presets"][name]["model"].get("training_chains", 1)}
                        for name, p in r["preset_steps"].items()]}


def _quality(r):
    cfg, pairs, diverged = r["config"], [], []
    for name, (ours, tfp) in MODELS.items():
        q = r[f"{name}_quality"]
        at = {side: {p["checkpoint_seconds"]: p for p in q[side]["curve"]} for side in ("ours", "tfp")}
        pairs.append({**q, "ours_name": ours, "tfp_name": tfp,
                      "bound": "<= " if q.get("ours_reached_by_first_checkpoint") else "",
                      "curves": [{"mark": mark, "ours": at["ours"].get(mark), "tfp": at["tfp"].get(mark)}
                                 for mark in sorted(set(at["ours"]) | set(at["tfp"]))]})
        diverged += [f"{label} stopped at a non-finite loss, step {q[side]['diverged_at_step']}."
                     for side, label in (("ours", ours), ("tfp", tfp)) if q[side]["diverged_at_step"] is not None]
    precisions = {name: cfg[name]["model"].get("mixed_precision") or "float32" for name in MODELS}
    networks = (f"{precisions['glow']} networks" if len(set(precisions.values())) == 1 else
                f"a {precisions['pixelcnnpp']} PixelCNN++ network and a {precisions['glow']} Glow network")
    return {"pairs": pairs, "diverged": diverged, "networks": networks, "figure": FIGURE}


CONTEXTS = {"steps": _steps, "maf": lambda r: {}, "quality": _quality}


def markdown(doc):
    """`benchmarks.md`: every suite's targets, then each suite's provenance and sections (the A/Bs after `steps`)."""
    suites = doc["suites"]
    rows = [{**t, "suite": name, **dict(zip(("measured", "needed_text"), target_cells(t)))}
            for name in suites for t in suites[name]["targets"]]
    lines = render("report", suites=suites, targets=rows,
                   suite_list="; ".join(f"`{n}` ({SUITE_TITLES.get(n, n)})" for n in suites))
    ab = render("design_ab", design_ab=doc.get("design_ab", []))
    for name, r in suites.items():
        context = {**r, "r": r, "cfg": r["config"], "suite": name, "title": SUITE_TITLES.get(name, name)}
        lines += render("provenance", **context) + render(name, **context, **CONTEXTS[name](r))
        lines += ab if name == "steps" else []
    return "\n".join(lines + (ab if "steps" not in suites and doc.get("design_ab") else []))


def load(path):
    """The `benchmarks.json` at `path`; empty where there is none."""
    path = Path(path)
    if not path.exists():
        return {"suites": {}}
    doc = json.loads(path.read_text())
    return doc if "suites" in doc else {"suites": {doc.get("suite", "steps"): doc}}  # from before suites: `steps`


def write(results, out):
    """`results` into `out/benchmarks.json`, keeping the other suites' and the A/Bs, and `out/benchmarks.md` from it."""
    out = Path(out)
    doc = load(out / "benchmarks.json")
    suites = {**doc["suites"], results["suite"]: results}
    order = [*SUITE_TITLES, *sorted(set(suites) - set(SUITE_TITLES))]
    doc["suites"] = {name: suites[name] for name in order if name in suites}
    return [write_json(out / "benchmarks.json", doc), write_text(out / "benchmarks.md", markdown(doc))]
