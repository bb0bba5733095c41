"""Activation smoothing before int8 (SmoothQuant, Xiao et al. 2023, arXiv:2211.10438), for ONNX Runtime's dynamic
quantization.

Dynamic quantization gives each matrix product's input one int8 scale per batch. A LayerNorm's output has a few
channels far wider than the rest (its weights amplify them: up to 15x the median channel in a fine-tuned MiniLM),
so those channels set the scale and the others keep only a few int8 steps. Smoothing divides each input channel j
by s_j and multiplies the weights' column j by s_j: the product is unchanged in exact arithmetic, and the wide
channels' range moves into the weights, which int8 keeps per output row. With

    s_j = max|X_j| ** alpha / max|W_j| ** (1 - alpha)

(alpha 0.5, the paper's default), max|X_j| measured on calibration texts.

Only the matrix products that read a LayerNorm's output, or a slice of it, are smoothed (a BERT layer's query, key
and value, its feed-forward up-projection, and the pooler): that is where the wide channels are, and where it
measured best (benchmarks/RESULTS.md). BERT-style encoders add the LayerNorm's output back in as the residual, so
the division cannot be folded into the LayerNorm's weights as the paper does for decoders; it stays a
multiplication in the graph, one per LayerNorm output however many products read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

ALPHA = 0.5
BATCH = 16
MAX_LENGTH = 512


class Scale(torch.nn.Module):
    """x times 1/s, per channel. The products that read the same tensor share one, and the exporter merges their
    identical multiplications: the graph has one (and ONNX Runtime one quantization) for all of them."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("inverse", (1 / scale).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.inverse


class Smoothed(torch.nn.Module):
    """A linear layer whose weights' input columns were multiplied by s, reading its input through `Scale`."""

    def __init__(self, linear: torch.nn.Linear, scale: Scale, s: torch.Tensor) -> None:
        super().__init__()
        self.scale, self.linear = scale, linear
        with torch.no_grad():
            linear.weight.mul_(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.scale(x))


def _is_layer_norm(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.LayerNorm) or type(module).__name__.endswith("LayerNorm")


def readers_of_layer_norms(
    model: torch.nn.Module, tokenizer: Any, inputs: Sequence[Any]
) -> dict[str, tuple[list[str], torch.Tensor]]:
    """Run `inputs` (texts, or (question, context) pairs) through `model` and return, for each LayerNorm whose
    output is read by linear layers as it is (or sliced), the names of those layers and the output's largest
    magnitude per channel. A layer that ever reads something else is left out."""
    names = {module: name for name, module in model.named_modules()}
    produced: list[tuple[torch.Tensor, str]] = []  # this batch's LayerNorm outputs, in order
    readers: dict[str, set[str | None]] = {}
    peaks: dict[str, torch.Tensor] = {}

    def record_output(module: torch.nn.Module, _: Any, output: torch.Tensor) -> None:
        name = names[module]
        produced.append((output, name))
        peak = output.detach().abs().reshape(-1, output.shape[-1]).amax(0)
        peaks[name] = torch.maximum(peaks[name], peak) if name in peaks else peak

    def record_reader(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        read = args[0]  # the output itself, or a slice of it (a pooler's first token)
        source = next((name for output, name in produced if read is output or read._base is output), None)
        readers.setdefault(names[module], set()).add(source)

    hooks = [
        module.register_forward_hook(record_output)
        if _is_layer_norm(module)
        else module.register_forward_pre_hook(record_reader)
        for module in model.modules()
        if _is_layer_norm(module) or isinstance(module, torch.nn.Linear)
    ]
    ordered = sorted(inputs, key=lambda item: len(item if isinstance(item, str) else "".join(item)))
    # tokenizers often say nothing of the model's window (a huge model_max_length); the positions decide
    max_length = min(
        MAX_LENGTH,
        tokenizer.model_max_length,
        getattr(getattr(model, "config", None), "max_position_embeddings", None) or MAX_LENGTH,
    )
    try:
        with torch.no_grad():
            for start in range(0, len(ordered), BATCH):
                batch = ordered[start : start + BATCH]
                pairs = not isinstance(batch[0], str)
                encoded = tokenizer(
                    [b[0] for b in batch] if pairs else list(batch),
                    [b[1] for b in batch] if pairs else None,
                    padding=True,
                    truncation="only_second" if pairs else True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                model(**encoded)
                produced.clear()
    finally:
        for hook in hooks:
            hook.remove()
    groups: dict[str, tuple[list[str], torch.Tensor]] = {}
    for linear, sources in sorted(readers.items()):
        if len(sources) == 1 and (source := next(iter(sources))) is not None:
            groups.setdefault(source, ([], peaks[source]))[0].append(linear)
    return groups


def smooth(model: torch.nn.Module, tokenizer: Any, inputs: Sequence[Any], alpha: float = ALPHA) -> int:
    """Smooth, in place, every linear layer of `model` that reads a LayerNorm's output, with scales measured on
    `inputs`; return how many were smoothed. The model computes the same function (up to float rounding)."""
    modules = dict(model.named_modules())
    count = 0
    for names, peak in readers_of_layer_norms(model.eval(), tokenizer, inputs).values():
        linears = [modules[name] for name in names]
        weight_peak = torch.cat([linear.weight.detach().abs() for linear in linears]).amax(0)
        s = (peak.clamp(min=1e-5) ** alpha / weight_peak.clamp(min=1e-5) ** (1 - alpha)).clamp(1e-5, 1e5)
        scale = Scale(s)
        for name, linear in zip(names, linears):
            parent, _, child = name.rpartition(".")
            setattr(modules[parent] if parent else model, child, Smoothed(linear, scale, s))
            count += 1
    return count
