"""Knowing the CPU: the flags that decide the int8 and bfloat16 paths, capped by what the kernels of the process can
use."""

import pytest
import torch

from hfapps.cpu import Cpu, _cap, cpu

ZEN2 = {"avx2", "fma"}


ZEN4 = ZEN2 | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"}


SAPPHIRE_RAPIDS = ZEN4 | {"amx_tile", "amx_int8", "amx_bf16"}


GRAVITON3 = {"asimd", "asimddp", "sve", "bf16", "i8mm"}


def make(flags, arch="x86_64"):
    return Cpu("test CPU", arch, "AVX512", frozenset(flags))


@pytest.mark.parametrize(
    "flags, arch, saturates, bf16, kernels",
    [
        (ZEN2, "x86_64", True, False, "AVX2 without VNNI"),
        (ZEN2 | {"avx_vnni"}, "x86_64", False, False, "AVX-VNNI"),
        (ZEN4, "x86_64", False, True, "AVX-512 VNNI"),
        (SAPPHIRE_RAPIDS, "x86_64", False, True, "AMX int8 tiles"),
        (GRAVITON3, "aarch64", False, True, "ARM NEON dot products"),
    ],
)
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
