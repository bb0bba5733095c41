"""Devices and dtypes: where a model runs and in which number format, and the inference context around it."""

from __future__ import annotations

import contextlib
import functools
import logging

import torch

from ..cpu import cpu
from ..errors import InputError

logger = logging.getLogger("hfapps")

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(device: str | int | torch.device | None = None) -> torch.device:
    """`None`/"auto" -> the first GPU if there is one, else the CPU; an int is a CUDA index."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if isinstance(device, int):
        return torch.device("cpu") if device < 0 else torch.device(f"cuda:{device}")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"Unknown device {device!r}; use 'cpu', 'cuda', 'cuda:1', 'mps' or 'auto'.") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"Device {device!r} was asked for but no CUDA GPU is visible; use device='cpu'.")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`None`/"auto" -> bfloat16 on GPUs that support it, float16 on other GPUs, float32 elsewhere.

    On CPUs bfloat16 is opt-in (`dtype="bfloat16"`): it changes results slightly, so "auto" keeps float32 and the
    same inputs give the same outputs on every machine. Whether it is faster depends on the CPU (`hfapps env` says):
    with AMX or AVX-512 BF16 it is; without them it is emulated and several times slower, and asking for it there
    warns once.
    """
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    elif dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    elif dtype not in DTYPES:
        raise InputError(f"Unknown dtype {dtype!r}; use one of 'auto', {', '.join(map(repr, DTYPES))}.")
    else:
        resolved = DTYPES[dtype]
    if resolved == torch.bfloat16 and device.type == "cpu" and not cpu().bf16_native:
        _warn_emulated_bfloat16()
    return resolved


#: What emulated bfloat16 cost where it was measured (benchmarks/RESULTS.md, "bfloat16 on CPUs without it").
EMULATED_BF16_COST = (
    "on an AMD EPYC of family 23, model 49 (Zen 2: AVX2 only), hfapps.classify ran 7.5x slower "
    "in bfloat16 than in float32"
)


@functools.cache
def _warn_emulated_bfloat16() -> None:
    here = cpu()
    seen = f"{here.name} (as capped by {here.capped_by})" if here.capped_by else here.name
    logger.warning(
        "dtype='bfloat16' on %s, which has no bfloat16 instructions (no AVX-512 BF16, AMX or ARM BF16): "
        "it is emulated, and slow (%s). Leave dtype unset (float32) on this CPU.",
        seen,
        EMULATED_BF16_COST,
    )


def inference_context(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """inference_mode, plus autocast when running below float32 so that ops without a bf16/fp16 kernel stay safe."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if dtype != torch.float32 and device.type in ("cpu", "cuda"):
        stack.enter_context(torch.autocast(device_type=device.type, dtype=dtype))
    return stack
