"""Knowing the CPU: the flags that decide the int8 and bfloat16 paths, capped by what the kernels of the process can
use; `hfapps env` saying what hfapps does on it; and the bfloat16 warning where it is emulated."""

import logging
import os
import subprocess
import sys

import pytest
import torch

from hfapps.cpu import Cpu, _cap, cpu

ZEN2 = {"avx2", "fma"}
ZEN4 = ZEN2 | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN4 | {"amx_tile", "amx_int8", "amx_bf16"}
GRAVITON3 = {"asimd", "asimddp", "sve", "bf16", "i8mm"}


def make(flags, arch="x86_64"):
    return Cpu("test CPU", arch, "AVX512", frozenset(flags))


@pytest.mark.parametrize("flags, arch, saturates, bf16, kernels", [
    (ZEN2, "x86_64", True, False, "AVX2 without VNNI"),
    (ZEN2 | {"avx_vnni"}, "x86_64", False, False, "AVX-VNNI"),
    (ZEN4, "x86_64", False, True, "AVX-512 VNNI"),
    (SAPPHIRE_RAPIDS, "x86_64", False, True, "AMX int8 tiles"),
    (GRAVITON3, "aarch64", False, True, "ARM NEON dot products"),
])
def test_what_each_kind_of_cpu_can_do(flags, arch, saturates, bf16, kernels):
    here = make(flags, arch)
    assert here.int8_saturates is saturates and here.bf16_native is bf16
    assert here.int8_kernels.startswith(kernels)


def test_the_kernels_dispatch_caps_the_flags(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert _cap(set(SAPPHIRE_RAPIDS), "AVX512") == (SAPPHIRE_RAPIDS, [])
    flags, why = _cap(set(SAPPHIRE_RAPIDS), "AVX2")  # what an emulator or ATEN_CPU_CAPABILITY=avx2 leaves
    assert flags == ZEN2 and why == ["torch ISA AVX2"]
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_vnni")
    flags, why = _cap(set(SAPPHIRE_RAPIDS), "AVX512")
    assert flags == ZEN4 - {"avx512_bf16"} and why == ["ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI"]
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert _cap(set(ZEN4), "AVX512")[0] == ZEN2
    assert _cap(set(GRAVITON3), "NEON")[0] == GRAVITON3  # the x86 switches leave an ARM CPU alone


def test_this_cpu_as_this_process_sees_it():
    here = cpu()
    assert here.capability == torch.backends.cpu.get_cpu_capability()
    if here.x86 and here.capability == "AVX2":
        assert not here.flags & {"avx512f", "avx512_vnni", "amx_tile"}
    assert here.name in here.describe() and here.capability in here.describe()


def run_env(**environment):
    done = subprocess.run([sys.executable, "-m", "hfapps", "env"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **environment})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_env_names_the_cpu_and_what_hfapps_does_on_it():
    out = run_env()
    here = cpu()
    assert f"cpu: {here.describe()}" in out and f"int8 kernels: {here.int8_kernels}" in out
    assert ("ONNX int8 exports: u8 x u8 products" in out) is here.int8_saturates
    assert ("bfloat16: native" in out) is here.bf16_native and ("bfloat16: emulated" in out) is not here.bf16_native
    assert "as fast as float32 just now" in out or "x float32 just now" in out


@pytest.mark.skipif(cpu().arch != "x86_64", reason="ATEN_CPU_CAPABILITY=avx2 is an x86 dispatch level")
def test_env_on_the_avx2_path_forced():
    """ATEN_CPU_CAPABILITY=avx2 shows hfapps the AVX2-only CPU that PyTorch then dispatches for, on any x86 CPU."""
    out = run_env(ATEN_CPU_CAPABILITY="avx2")
    assert "torch ISA AVX2" in out and "capped by ATEN_CPU_CAPABILITY=avx2" in out
    assert "int8 kernels: AVX2 without VNNI" in out and "ONNX int8 exports: u8 x u8 products" in out
    assert "bfloat16: emulated" in out and "never picks it" in out


def test_bfloat16_warns_once_where_it_is_emulated(caplog):
    from hfapps import runtime

    runtime._warn_emulated_bfloat16.cache_clear()
    with caplog.at_level(logging.WARNING, logger="hfapps"):
        assert runtime.resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
        assert runtime.resolve_dtype(torch.bfloat16, torch.device("cpu")) == torch.bfloat16
    warned = [r for r in caplog.records if "bfloat16" in r.getMessage()]
    assert len(warned) == (0 if cpu().bf16_native else 1)
    assert runtime.resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert runtime.resolve_dtype(None, torch.device("cpu")) == torch.float32


@pytest.mark.skipif(cpu().arch != "x86_64", reason="ATEN_CPU_CAPABILITY=avx2 is an x86 dispatch level")
def test_bfloat16_on_the_forced_avx2_path_warns_once_naming_its_cost(tiny):
    script = ("import hfapps\n"
              f"hfapps.sentiment(['a'], model={tiny['classifier']!r}, dtype='bfloat16')\n"
              "hfapps.clear_cache()\n"
              f"print(hfapps.sentiment('b', model={tiny['classifier']!r}, dtype='bfloat16')['label'])\n"
              f"print(hfapps.load('sentiment', {tiny['classifier']!r}).dtype)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ATEN_CPU_CAPABILITY": "avx2"})
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("dtype='bfloat16' on") == 1
    assert "emulated" in done.stderr and "7.5x slower in bfloat16 than in float32" in done.stderr
    assert done.stdout.split()[-1] == "torch.float32"  # auto never picks it
