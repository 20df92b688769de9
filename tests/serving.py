"""Serve a SavedModel the way a deployment would: in a fresh process where `import zoo`
fails, so every signature must run on TensorFlow alone."""

import json
import subprocess
import sys

import numpy as np

_SCRIPT = """
import json, sys
sys.modules["zoo"] = None  # serving must need TensorFlow alone
import numpy as np, tensorflow as tf
calls_file, inputs_file, out_file = sys.argv[1:4]
inputs = np.load(inputs_file)
models, out = {}, {}
for key, (path, signature, args) in json.load(open(calls_file)).items():
    if path not in models:
        models[path] = tf.saved_model.load(path)
    result = models[path].signatures[signature](**{a: tf.constant(inputs[f"{key}/{a}"]) for a in args})
    out.update({f"{key}/{name}": value.numpy() for name, value in result.items()})
np.savez(out_file, **out)
"""


def serve_without_zoo(path, calls, tmp_path):
    """Runs signatures of the SavedModel at `path` in a subprocess without `zoo`.

    Args:
      calls: `{key: (signature name, {argument: array or scalar})}`; scalars keep
        their numpy dtype (pass e.g. `np.int64(3)` for an int64 seed).
    Returns:
      `{key: {output name: numpy array}}`.
    """
    return serve_many_without_zoo({key: (path, *call) for key, call in calls.items()}, tmp_path)


def serve_many_without_zoo(calls, tmp_path):
    """`serve_without_zoo` for several SavedModels in one subprocess (one TensorFlow start):
    `calls` is `{key: (path, signature name, {argument: value})}`; keys hold no "/"."""
    inputs = {f"{key}/{a}": np.asarray(v) for key, (_, _, args) in calls.items() for a, v in args.items()}
    np.savez(tmp_path / "serve_inputs.npz", **inputs)
    (tmp_path / "serve_calls.json").write_text(json.dumps(
        {key: [str(path), signature, list(args)] for key, (path, signature, args) in calls.items()}))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "serve_calls.json"),
                           str(tmp_path / "serve_inputs.npz"), str(tmp_path / "serve_out.npz")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {key: {} for key in calls}
    with np.load(tmp_path / "serve_out.npz") as out:
        for name in out.files:
            key, output = name.split("/", 1)
            results[key][output] = out[name]
    return results


def served_bits_and_sample(path, x, tmp_path):
    """`bits_per_dim(x)` and `sample(n=3, temperature=1, seed=5)` of the SavedModel at
    `path` (an unconditional model), served without zoo."""
    out = serve_without_zoo(path, {
        "bpd": ("bits_per_dim", {"images": x}),
        "s": ("sample", {"n": np.int32(3), "temperature": np.float32(1.0), "seed": np.int64(5)})}, tmp_path)
    return {"bits_per_dim": out["bpd"]["bits_per_dim"], "sample": out["s"]["images"]}


def assert_flow_serves_like(model, path, images, tmp_path, atol=1e-5):
    """The exported flow at `path`, served without `zoo`, matches `model` in process:
    `encode` at two batch sizes (a dynamic batch), `decode` back to the integer images,
    `log_prob`, and `sample` at temperature 0.7 with a fixed seed."""
    out = serve_without_zoo(path, {
        "z": ("encode", {"images": images}),
        "z2": ("encode", {"images": images[:2]}),
        "decoded": ("decode", {"z": model.encode(images).numpy()}),
        "log_prob": ("log_prob", {"images": images}),
        "sample": ("sample", {"n": np.int32(3), "temperature": np.float32(0.7), "seed": np.int64(2)}),
    }, tmp_path)
    np.testing.assert_allclose(out["z"]["z"], model.encode(images), rtol=atol, atol=atol)
    np.testing.assert_allclose(out["z2"]["z"], model.encode(images[:2]), rtol=atol, atol=atol)
    np.testing.assert_array_equal(out["decoded"]["images"], images)
    np.testing.assert_allclose(out["log_prob"]["log_prob"], model.log_prob(images), rtol=1e-5)
    np.testing.assert_array_equal(out["sample"]["images"], model.sample(3, temperature=0.7, seed=2))
