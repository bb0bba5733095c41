"""What a run leaves next to its model: metrics.json, the resolved recipe, versions and seed, a
training-curve picture and a model card."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from typing import Any

import yaml
from transformers import TrainerCallback

PACKAGES = ("hfapps", "torch", "transformers", "datasets", "accelerate", "evaluate", "tokenizers")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


class ElapsedTime(TrainerCallback):
    """Adds `elapsed_seconds` since training began (resumed runs: since this process began) to every entry of
    the log history, so that a run's scores can be read against the minutes they took."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.log_history and hasattr(self, "started"):
            state.log_history[-1]["elapsed_seconds"] = round(time.time() - self.started, 1)


def write_json(path: str, data: Any) -> None:
    """Write JSON through a temporary file, so a reader never sees half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, default=str)
    os.replace(tmp, path)


def plain_recipe(resolved: dict[str, Any]) -> dict[str, Any]:
    """The resolved recipe as YAML stores and reads it back (enums and paths as strings)."""
    return yaml.safe_load(yaml.safe_dump(json.loads(json.dumps(resolved, default=str))))


def write_recipe(path: str, resolved: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(plain_recipe(resolved), handle, sort_keys=True)


def plot_curve(log_history: list[dict[str, Any]], path: str) -> None:
    """Training and evaluation loss against the step, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    if train:
        axes.plot(*zip(*train), label="train loss")
    if evals:
        axes.plot(*zip(*evals), marker="o", label="eval loss")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("Training curve")
    axes.grid(alpha=0.3)
    if train or evals:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _flat(scores: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]


def model_card(
    path: str, *, task: str, base_model: str, resolved: dict[str, Any], metrics: dict[str, Any], command: str
) -> None:
    rows = [
        f"| {split} | {name} | {value:.4g} |"
        for split, scores in metrics.items()
        if isinstance(scores, dict)
        for name, value in _flat(scores)
    ]
    data = resolved.get("dataset_name") or ", ".join(
        str(resolved[k]) for k in ("train_file", "validation_file", "test_file") if resolved.get(k)
    )
    keys = (
        "learning_rate",
        "num_train_epochs",
        "max_steps",
        "per_device_train_batch_size",
        "weight_decay",
        "warmup_steps",
        "max_seq_length",
        "seed",
    )
    hyper = "\n".join(f"- {k}: {resolved.get(k)}" for k in keys if k in resolved)
    card = f"""---
library_name: transformers
base_model: {base_model}
tags: [hfapps, {task}]
---

# {os.path.basename(os.path.abspath(os.path.dirname(path)))}

A `{task}` model fine-tuned from `{base_model}` with hfapps on {data or "the recipe's data"}.

```python
import hfapps
hfapps.load("{task}", model="{os.path.dirname(path) or "."}")
```

## Results

| split | metric | value |
| --- | --- | --- |
{chr(10).join(rows)}

## Training

Reproduce with `{command}`. The full recipe is in `recipe.yaml`, library versions and seed in `run.json`,
the training curve in `training_curve.png`.

{hyper}
"""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(card)
