"""oneDNN matrix products, with the bias and a following GELU fused in, for float32 encoder inference on CPU.

An encoder spends most of its time in its linear layers. On CPU, PyTorch runs `nn.Linear` as MKL's sgemm
after copying the bias into every row of the output, then runs the activation as another pass over that output.
oneDNN's matmul (`torch.ops.mkldnn._linear_pointwise`, the kernel PyTorch's own compiler emits for CPU linear
layers) adds the bias and applies GELU while each tile of the result is still in cache. On MiniLM-L6 batches of
32 paragraphs that made the whole forward pass about 1.15x faster, with outputs within 1e-5 of the plain
ones (benchmarks/RESULTS.md, "Embedding speed").

`fuse_linear_layers(model)` routes a CPU float32 model's `nn.Linear` layers, and the "dense, then GELU" blocks of
BERT-family encoders (a module with a `dense` layer and an exact-GELU `intermediate_act_fn`), through it. Only
where no gradient can be wanted (`torch.no_grad`, `torch.inference_mode`): oneDNN's kernel has no backward, so
training runs as before, and so do tracing (the ONNX export), compiling, other dtypes and devices, and products
of few rows (a short single text), where the plain product is as fast. Set `HFAPPS_ONEDNN=0` to turn it off.
"""

from __future__ import annotations

import os
import types

import torch
from torch import nn
from transformers.activations import GELUActivation

#: Below this many rows (tokens in the batch) the plain product is as fast, and the per-call weight layout costs more.
MIN_ROWS = 64


def available(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether fusing applies: float32 on a CPU, PyTorch built with oneDNN, not turned off."""
    return (
        device.type == "cpu"
        and dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and os.environ.get("HFAPPS_ONEDNN", "1") != "0"
    )


def _usable(x: torch.Tensor, layer: nn.Linear) -> bool:
    """Whether this call may run on oneDNN: no autograd, no tracer or compiler, float32 CPU tensors, enough rows."""
    weight, bias = layer.weight, layer.bias
    return (
        not torch.is_grad_enabled()
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and x.device.type == "cpu"
        and weight.device.type == "cpu"
        and (bias is None or bias.dtype == torch.float32)
        and x.dim() >= 2
        and x.numel() // max(x.shape[-1], 1) >= MIN_ROWS
    )


def _linear(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if _usable(x, self):
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
    return nn.functional.linear(x, self.weight, self.bias)


def _dense_gelu(self: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    if _usable(hidden_states, self.dense):
        return torch.ops.mkldnn._linear_pointwise(hidden_states, self.dense.weight, self.dense.bias, "gelu", [], "none")
    return self._hfapps_plain_forward(hidden_states)


def _exact_gelu(module: nn.Module) -> bool:
    """transformers' "gelu" activation (erf, not the tanh approximation), the one oneDNN's "gelu"/"none" computes."""
    if type(module) is nn.GELU:
        return module.approximate == "none"
    return type(module) is GELUActivation and getattr(module, "act", None) is nn.functional.gelu


def fuse_linear_layers(model: nn.Module) -> int:
    """Route `model`'s linear layers (and dense+GELU blocks) through oneDNN at inference; returns how many layers."""
    count = 0
    for module in model.modules():
        dense = getattr(module, "dense", None)
        if (
            type(dense) is nn.Linear
            and _exact_gelu(getattr(module, "intermediate_act_fn", None))
            and not hasattr(module, "_hfapps_plain_forward")
        ):
            module._hfapps_plain_forward = module.forward
            module.forward = types.MethodType(_dense_gelu, module)
    for module in model.modules():
        if type(module) is nn.Linear and not hasattr(module, "_hfapps_onednn"):
            module._hfapps_onednn = True
            module.forward = types.MethodType(_linear, module)
            count += 1
    return count
