"""A 16-bit network is kept only where the machine computes it natively
(`zoo.training.precision`), and `python -m reproduce --mixed-precision` applies it."""

import json
import os
import platform

import pytest
import tensorflow as tf

from reproduce import arm, records
from reproduce.__main__ import build_parser, main
from zoo.training import precision
from zoo.training.precision import CHOICES, choose_mixed_precision, native

AMD_AVX2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd bf16\n"


@pytest.fixture
def cpuinfo(tmp_path):
    def write(text):
        path = tmp_path / f"cpuinfo{len(list(tmp_path.iterdir()))}"
        path.write_text(text)
        return str(path)
    return write


def test_cpu_flags_are_read_from_cpuinfo_and_none_where_there_is_none(cpuinfo, tmp_path):
    assert precision.cpu_flags(cpuinfo(AMD_AVX2)) == {"fpu", "sse2", "avx", "avx2", "fma"}
    assert "bf16" in precision.cpu_flags(cpuinfo(GRAVITON))
    assert precision.cpu_flags(str(tmp_path / "missing")) is None


def test_native_on_cpus_by_their_flags(cpuinfo, tmp_path):
    assert native("bfloat16", gpus=[], cpuinfo=cpuinfo(AMD_AVX2)) is False
    assert native("float16", gpus=[], cpuinfo=cpuinfo(AMD_AVX2)) is False
    assert native("bfloat16", gpus=[], cpuinfo=cpuinfo(SAPPHIRE_RAPIDS)) is True
    assert native("float16", gpus=[], cpuinfo=cpuinfo(SAPPHIRE_RAPIDS)) is False
    assert native("bfloat16", gpus=[], cpuinfo=str(tmp_path / "missing")) is None


def test_records_name_the_cpu_and_its_16_bit_flags(cpuinfo, tmp_path):
    """A record's hardware tells an AVX2-only machine from one that trains bfloat16 natively."""
    assert records.cpu_model(cpuinfo(AMD_AVX2)) == "AMD EPYC"
    assert records.cpu_model(str(tmp_path / "missing"))  # the platform's name instead
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("the CPU is named after the GPUs")
    arch = platform.machine()
    assert records.hardware(cpuinfo(AMD_AVX2)) == f"{os.cpu_count()} CPU cores (AMD EPYC, {arch})"
    sapphire = records.hardware(cpuinfo("model name\t: Intel Xeon\n" + SAPPHIRE_RAPIDS))
    assert sapphire == f"{os.cpu_count()} CPU cores (Intel Xeon, {arch}, amx_bf16, avx512_bf16)"


def test_native_on_gpus_by_compute_capability(cpuinfo):
    avx2 = cpuinfo(AMD_AVX2)  # the CPU does not matter when there are GPUs
    assert native("bfloat16", gpus=[(8, 0)], cpuinfo=avx2) is True
    assert native("bfloat16", gpus=[(7, 5)], cpuinfo=avx2) is False  # T4: emulated bfloat16
    assert native("float16", gpus=[(7, 0)], cpuinfo=avx2) is True
    assert native("bfloat16", gpus=[(9, 0), (7, 0)], cpuinfo=avx2) is False  # every GPU must


def test_mixed_precision_choices(cpuinfo):
    avx2, amx = {"gpus": [], "cpuinfo": cpuinfo(AMD_AVX2)}, {"gpus": [], "cpuinfo": cpuinfo(SAPPHIRE_RAPIDS)}
    chosen, why = choose_mixed_precision("bfloat16", "auto", **avx2)
    assert chosen is None and "no native bfloat16" in why and "--mixed-precision preset" in why
    assert choose_mixed_precision("bfloat16", "auto", **amx) == ("bfloat16", None)
    assert choose_mixed_precision("bfloat16", "preset", **avx2) == ("bfloat16", None)
    chosen, why = choose_mixed_precision("bfloat16", "none", **amx)
    assert chosen is None and "float32" in why
    assert choose_mixed_precision(None, "auto", **avx2) == (None, None)
    chosen, why = choose_mixed_precision(None, "float16", **avx2)  # asked for: kept where emulated too
    assert chosen == "float16" and "--mixed-precision float16" in why
    assert choose_mixed_precision("float16", "float16", **avx2) == ("float16", None)


def test_mixed_precision_refuses_unknown_names():
    with pytest.raises(ValueError, match="choice must be one of"):
        choose_mixed_precision("bfloat16", "fast")
    with pytest.raises(ValueError, match="precision must be one of"):
        native("float8", gpus=[])


def test_the_driver_records_the_network_it_trained(tmp_path, monkeypatch, capsys):
    smoke = {**arm.PRESETS["smoke"], "model": {**arm.PRESETS["smoke"]["model"], "mixed_precision": "bfloat16"}}
    monkeypatch.setitem(arm.PRESETS, "smoke", smoke)
    main(["arm", "--preset", "smoke", "--epochs", "1", "--out", str(tmp_path), "--mixed-precision", "none"])
    record = json.loads((tmp_path / "runs" / "arm" / "smoke-digits.json").read_text())
    assert record["config"]["mixed_precision"] is None
    assert record["train"]["mixed_precision"] == "none"
    assert "a float32 network (--mixed-precision none; the preset's is bfloat16)" in capsys.readouterr().out


def test_the_command_line_offers_the_choices():
    glow = build_parser().parse_args(["glow"])
    assert glow.mixed_precision == "auto"
    for choice in CHOICES:
        assert build_parser().parse_args(["glow", "--mixed-precision", choice]).mixed_precision == choice
    with pytest.raises(SystemExit):
        build_parser().parse_args(["glow", "--mixed-precision", "fast"])
    for gone in ("--precision", "--network-precision"):  # one spelling: the model's mixed_precision
        with pytest.raises(SystemExit):
            build_parser().parse_args(["glow", gone, "float32"])
