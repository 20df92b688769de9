"""Which network precision pays on this machine.

A 16-bit network (`mixed_precision="bfloat16"` or `"float16"`; likelihoods stay float32)
is a training-speed setting, and it only speeds training where the hardware computes
16-bit matmuls and convolutions natively: a GPU of compute capability 8.0 or later
(7.0 for float16), or a CPU whose flags oneDNN's 16-bit kernels need (AVX512_BF16 or
AMX-BF16 for bfloat16; AVX512_FP16 or AMX-FP16 for float16). Elsewhere TensorFlow
emulates them in Eigen, and a 16-bit network trains several times slower than a float32
one, so `auto` falls back to float32 there.
"""

import tensorflow as tf

from zoo.models.base import HALF_DTYPES

CPU_FLAGS = {"bfloat16": {"avx512_bf16", "amx_bf16"}, "float16": {"avx512_fp16", "amx_fp16"}}
GPU_CAPABILITY = {"bfloat16": (8, 0), "float16": (7, 0)}
# `python -m reproduce --mixed-precision`: the model's own values ("none" for None) and
# two that defer to the preset.
CHOICES = ("auto", "preset", "none", *HALF_DTYPES)


def cpuinfo_value(keys, cpuinfo="/proc/cpuinfo"):
    """The value of the first `cpuinfo` line whose key is one of `keys` ("" when none
    is), or None where `cpuinfo` cannot be read (not Linux)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in keys:
                    return value.strip()
    except OSError:
        return None
    return ""


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags (a set of lowercase names), or None where `cpuinfo` cannot
    be read (not Linux)."""
    value = cpuinfo_value(("flags", "Features"), cpuinfo)
    return None if value is None else set(value.split())


def native(precision, gpus=None, cpuinfo="/proc/cpuinfo"):
    """Whether `precision` ("bfloat16" or "float16") runs natively here: on every visible
    GPU when there is one (`gpus`: their compute capabilities, default: TF's), else on the
    CPU (its flags read from `cpuinfo`). None when it cannot tell (no CPU flags)."""
    if precision not in HALF_DTYPES:
        raise ValueError(f"precision must be one of {HALF_DTYPES}, got {precision!r}.")
    if gpus is None:
        gpus = [tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0))
                for g in tf.config.list_physical_devices("GPU")]
    if gpus:
        return all(tuple(c) >= GPU_CAPABILITY[precision] for c in gpus)
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return None
    return bool(CPU_FLAGS[precision] & flags)


def choose_mixed_precision(requested, choice="auto", **machine):
    """The `mixed_precision` to train a preset's model with, and a sentence saying why it
    differs from `requested` (None when it does not).

    `choice` (`CHOICES`): "preset" keeps `requested`; "none" trains a float32 network
    (None); "bfloat16" or "float16" that 16-bit network whatever the preset's; "auto"
    keeps a 16-bit `requested` only where it runs natively (`native`; kept when that
    cannot be told). `machine`: `gpus` and `cpuinfo` for `native` (tests)."""
    if choice not in CHOICES:
        raise ValueError(f"mixed precision choice must be one of {CHOICES}, got {choice!r}.")
    chosen = {"preset": requested, "none": None, "auto": requested}.get(choice, choice)
    if choice == "auto" and requested is not None and native(requested, **machine) is False:
        return None, (f"a float32 network: this machine has no native {requested} matmuls and "
                      f"convolutions (TF would emulate them, several times slower); "
                      f"--mixed-precision preset keeps the preset's {requested}")
    if chosen == requested:
        return requested, None
    return chosen, (f"a {chosen or 'float32'} network (--mixed-precision {choice}; the preset's is "
                    f"{requested or 'float32'})")
