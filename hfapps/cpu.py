"""What this CPU can do, read once from the CPU itself: the instruction sets that decide hfapps' fast paths.

Machines that run hfapps differ: an AVX2-only CPU (AMD Zen 2, Intel Haswell to Skylake client) multiplies int8 with
VPMADDUBSW, whose 16-bit sums saturate, and emulates bfloat16; one with AVX-512 VNNI or AVX-VNNI (Ice Lake, Zen 4)
has exact int8 dot products; AMX (Sapphire Rapids and later) has int8 and bfloat16 tiles; ARM has NEON dot products
and, on newer cores, bfloat16. Everything in hfapps that depends on it asks `cpu()` here.

The flags come from the operating system (`/proc/cpuinfo`; `sysctl` on macOS), capped by what the kernels of this
process can use: PyTorch's own dispatch (`torch.backends.cpu.get_cpu_capability()`, read from CPUID, which
`ATEN_CPU_CAPABILITY` lowers) and oneDNN's (`ONEDNN_MAX_CPU_ISA`). Lowering either switch therefore shows hfapps the
smaller CPU it sets, and under an emulator the emulated CPU, whatever the host's `/proc/cpuinfo` says.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from dataclasses import dataclass

#: The flags that decide a fast path, as Linux names them.
X86_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
ARM_FLAGS = ("asimd", "asimddp", "sve", "sve2", "bf16", "i8mm")
#: ONEDNN_MAX_CPU_ISA values (oneDNN's dispatcher control), smallest first, and the flags each one allows.
ONEDNN_ISAS = (
    ("SSE41", ()),
    ("AVX", ()),
    ("AVX2", ("avx2", "fma")),
    ("AVX2_VNNI", ("avx2", "fma", "avx_vnni")),
    ("AVX2_VNNI_2", ("avx2", "fma", "avx_vnni")),
    ("AVX512_CORE", ("avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512vl")),
    ("AVX512_CORE_VNNI", ("avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni")),
    ("AVX512_CORE_BF16", ("avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16")),
)
#: macOS names (sysctl hw.optional.*) of the ARM features above.
DARWIN_FLAGS = {
    "hw.optional.neon": "asimd",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
}


@dataclass(frozen=True)
class Cpu:
    """The CPU as the kernels of this process see it."""

    name: str  # the model name, with the family and model numbers where the OS gives them
    arch: str  # "x86_64", "aarch64", ...
    capability: str  # PyTorch's vector ISA: "AVX512", "AVX2", "DEFAULT", "NEON", "SVE256", ...
    flags: frozenset[str]
    capped_by: str | None = None  # what lowered the OS's flags ("ATEN_CPU_CAPABILITY=avx2", ...), if anything

    @property
    def x86(self) -> bool:
        return self.arch in ("x86_64", "AMD64", "i686", "x86")

    @property
    def vnni(self) -> bool:
        """Exact int8 dot products (AVX-512 VNNI, AVX-VNNI or AMX)."""
        return bool(self.flags & {"avx512_vnni", "avx_vnni", "amx_int8"})

    @property
    def amx(self) -> bool:
        return "amx_tile" in self.flags

    @property
    def int8_saturates(self) -> bool:
        """Whether ONNX Runtime's fast u8 x s8 kernels can saturate here: on x86 without VNNI they sum pairs of products
        in 16 bits (VPMADDUBSW). ARM's and VNNI's dot products sum in 32 bits."""
        return self.x86 and not self.vnni

    @property
    def bf16_native(self) -> bool:
        """bfloat16 products in hardware (AVX-512 BF16, AMX, or ARM's BF16); elsewhere they are emulated."""
        return bool(self.flags & {"avx512_bf16", "amx_bf16", "bf16"})

    @property
    def int8_kernels(self) -> str:
        """Which int8 matrix kernels run here, in words."""
        if self.amx and "amx_int8" in self.flags:
            return "AMX int8 tiles (exact)"
        if "avx512_vnni" in self.flags:
            return "AVX-512 VNNI (exact 32-bit sums)"
        if "avx_vnni" in self.flags:
            return "AVX-VNNI (exact 32-bit sums)"
        if self.x86:
            return "AVX2 without VNNI (u8 x s8 pairs summed in 16 bits, which can saturate)"
        if "asimddp" in self.flags:
            return "ARM NEON dot products (exact)"
        return "generic (no int8 dot-product instructions)"

    def describe(self) -> str:
        shown = [flag for flag in (*X86_FLAGS, *ARM_FLAGS) if flag in self.flags]
        capped = f"; capped by {self.capped_by}" if self.capped_by else ""
        return f"{self.name} ({self.arch}); torch ISA {self.capability}; flags: {' '.join(shown) or 'none'}{capped}"


def _os_cpu() -> tuple[str, set[str]]:
    """(model name, flags) as the operating system reports them."""
    system = platform.system()
    if system == "Linux" and os.path.isfile("/proc/cpuinfo"):
        fields: dict[str, str] = {}
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, sep, value = line.partition(":")
                if not sep:
                    if fields:  # the first processor's block is enough
                        break
                    continue
                fields.setdefault(key.strip(), value.strip())
        flags = set((fields.get("flags") or fields.get("Features") or "").split())
        name = fields.get("model name") or fields.get("Model") or fields.get("CPU part") or platform.processor()
        if "cpu family" in fields and "model" in fields:
            name = f"{name} (family {fields['cpu family']}, model {fields['model']})"
        return name or "unknown CPU", flags
    if system == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        values = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        flags = {flag for key, flag in DARWIN_FLAGS.items() if values.get(key, "0").strip() == "1"}
        for key, flag in (
            ("hw.optional.avx2_0", "avx2"),
            ("hw.optional.avx512f", "avx512f"),
            ("hw.optional.avx512vnni", "avx512_vnni"),
        ):
            if values.get(key, "0").strip() == "1":
                flags.add(flag)
        return values.get("machdep.cpu.brand_string", platform.processor() or "unknown CPU"), flags
    return platform.processor() or "unknown CPU", set()


def _cap(flags: set[str], capability: str) -> tuple[set[str], list[str]]:
    """The flags that PyTorch's dispatch and oneDNN's ISA cap leave usable, and what capped them."""
    why = []
    if flags & set(X86_FLAGS):
        if capability in ("AVX2", "DEFAULT") and flags & {"avx512f", "amx_tile"}:
            flags = {f for f in flags if not f.startswith(("avx512", "amx"))}
            why.append(f"torch ISA {capability}")
        if capability == "DEFAULT" and "avx2" in flags:
            flags = flags - {"avx2", "fma", "avx_vnni"}
        onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "")).upper()
        allowed = dict(ONEDNN_ISAS).get(onednn)
        if allowed is not None:
            limited = {f for f in flags if f not in X86_FLAGS or f in allowed}
            if limited != flags:
                flags = limited
                why.append(f"ONEDNN_MAX_CPU_ISA={onednn}")
    return flags, why


@functools.cache
def cpu() -> Cpu:
    """This process's CPU (read once)."""
    import torch

    name, flags = _os_cpu()
    capability = torch.backends.cpu.get_cpu_capability()
    flags, why = _cap(flags, capability)
    if os.environ.get("ATEN_CPU_CAPABILITY") and why and why[0].startswith("torch"):
        why[0] = f"ATEN_CPU_CAPABILITY={os.environ['ATEN_CPU_CAPABILITY']}"
    return Cpu(name, platform.machine(), capability, frozenset(flags), ", ".join(why) or None)
