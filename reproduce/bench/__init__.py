"""`python -m reproduce bench [--suite steps|maf|quality|gpu] [--quick] [--out DIR]`: our models against TFP's.

`steps` (the default), `maf` and `quality` (each a module: `config(quick)`, `sections(config, data_dir)`,
`targets(results)`) write their results into `DIR/benchmarks.json`, keeping the other suites', and render
`DIR/benchmarks.md` from it (`report.py`); `gpu` writes a report of its own (`gpu.py`). How: `measure.py`.
"""

import importlib
import os
import time

SUITES = ("steps", "maf", "quality", "gpu")
OWN_REPORTS = ("gpu",)  # suites that write their own files, not sections of benchmarks.json


def run(suite="steps", quick=False, note="", data_dir=None):
    """Every section of `suite` in order, with provenance (command, date, commit, machine, note, config) and targets."""
    from reproduce import records
    from reproduce.bench.measure import machine
    from reproduce.threads import thread_flags

    if suite not in SUITES or suite in OWN_REPORTS:
        raise ValueError(f"suite must be one of {tuple(s for s in SUITES if s not in OWN_REPORTS)}, got {suite!r}.")
    module = importlib.import_module(f"reproduce.bench.{suite}")
    cfg, start = module.config(quick), time.time()
    command = " ".join(part for part in ("python -m reproduce bench", f"--suite {suite}",
                                         "--quick" if quick else "", thread_flags()) if part)
    results = {"suite": suite, "command": command, "quick": quick, "date": records.now(),
               "git_commit": records.git_commit(), "machine": machine(), "note": note, "config": cfg}
    for name, section in module.sections(cfg, data_dir):
        t = time.time()
        results[name] = section()
        print(f"bench: {name} done in {time.time() - t:.0f} s", flush=True)
    results["machine"]["load_average_1min_at_end"] = os.getloadavg()[0]
    results["wall_seconds"] = time.time() - start
    results["targets"] = module.targets(results)
    return results


def main(args):
    """`python -m reproduce bench` (flags parsed by `reproduce.__main__`): runs the suite, writes its files."""
    if args.suite in OWN_REPORTS:  # before TensorFlow initializes a GPU: its workers carve logical ones
        return importlib.import_module(f"reproduce.bench.{args.suite}").main(args)
    import keras

    from reproduce.bench import report
    from reproduce.threads import apply_thread_args

    apply_thread_args(args)
    keras.mixed_precision.set_global_policy("float32")
    results = run(args.suite, args.quick, args.note, args.data_dir)
    paths = report.write(results, args.out)
    if args.suite == "quality":
        from reproduce.bench.quality import write_figure
        paths.append(write_figure(results, args.out))
    print("wrote " + ", ".join(map(str, paths)))
    return results
