"""Pre-packed weights for the few-row float32 matrix products of decoding on CPU.

Generating text multiplies a handful of rows (one new token per sequence in the batch) by every
weight matrix of the decoder, once per token. For such products MKL's sgemm re-packs the whole
weight matrix on every call, which can cost more than the product itself; a weight packed once
(`cblas_sgemm_pack`, which PyTorch exposes as `torch.ops.mkl._mkl_reorder_linear_weight` for its
compiler's CPU weight pre-packing) avoids that.

`pack_linear_layers(model)` makes every `nn.Linear` of a CPU float32 model keep one packed copy of
its weight for a small row count that repeats (every decoding step of a batch): packed at the second
call in a row with that count, and used while it lasts. A count seen once (a short prompt's prefill)
runs plain, since packing the whole weight for one product doubled the time to the first token.
Products with more rows (the encoder, a long prompt) run as before, so do gradients, other dtypes
and devices, and a weight changed in place is packed again. The packed copies cost memory (a share
of the model's own size; the figures are in benchmarks/RESULTS.md).
Set `HFAPPS_PACK_WEIGHTS=0` to turn it off.
"""

from __future__ import annotations

import os
import types

import torch
from torch import nn

#: Above this many rows plain sgemm is about as fast as a packed weight, so larger products are left alone.
MAX_PACKED_ROWS = 64


def available(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether packing applies: float32 on a CPU, PyTorch built with MKL, not turned off."""
    return (
        device.type == "cpu"
        and dtype == torch.float32
        and torch.backends.mkl.is_available()
        and hasattr(torch.ops.mkl, "_mkl_linear")
        and os.environ.get("HFAPPS_PACK_WEIGHTS", "1") != "0"
    )


def _packed_forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    weight = self.weight
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    if (
        not 0 < rows <= MAX_PACKED_ROWS
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or x.device.type != "cpu"
        or weight.device.type != "cpu"
        or (torch.is_grad_enabled() and (weight.requires_grad or x.requires_grad))
    ):
        return nn.functional.linear(x, weight, self.bias)
    key = (rows, weight.data_ptr(), weight._version)
    if self._hfapps_packed_key != key:
        last, self._hfapps_last_rows = self._hfapps_last_rows, rows
        if last != rows:  # a row count seen once (a prompt) is not worth packing the whole weight for
            return nn.functional.linear(x, weight, self.bias)
        with torch.no_grad():
            self._hfapps_packed = torch.ops.mkl._mkl_reorder_linear_weight(weight.detach(), rows)
        self._hfapps_packed_key = key
    return torch.ops.mkl._mkl_linear(x, self._hfapps_packed, weight, self.bias, rows)


def pack_linear_layers(model: nn.Module) -> int:
    """Route `model`'s `nn.Linear` layers through packed weights for few-row products; returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is nn.Linear and not hasattr(module, "_hfapps_packed_key"):
            module._hfapps_packed_key = None
            module._hfapps_packed = None
            module._hfapps_last_rows = None
            module.forward = types.MethodType(_packed_forward, module)
            count += 1
    return count
