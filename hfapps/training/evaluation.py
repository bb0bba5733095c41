"""Scoring a model with its task helper: the code behind `hfapps evaluate`, and the scores a recipe
writes to metrics.json."""

from __future__ import annotations

import time
from typing import Any

from datasets import Dataset, DatasetDict

from ..data import require_columns
from ..errors import DataError
from ..tasks import TRAINING
from ..tasks.arguments import DataArguments
from .splits import load_file


def score_split(task: str, model: str, split: Dataset, args: DataArguments, **load_options: Any) -> dict[str, Any]:
    """Run the `task` helper with `model` over `split` and score its predictions."""
    from ..api import load

    spec = TRAINING[task](args)
    if not spec.scorable():
        raise DataError(
            f"hfapps' {task} helper cannot score this data (no helper for the task, or sentence "
            "pairs); its metrics are the Trainer's evaluation."
        )
    helper = load(task, model, **load_options)  # type: ignore[arg-type]
    inputs = spec.helper_inputs(split)
    start = time.perf_counter()
    predictions = helper(inputs, **spec.helper_options())
    seconds = time.perf_counter() - start
    scores = spec.score(predictions, split, helper.config)
    return {
        **scores,
        "samples": len(inputs),
        "seconds": round(seconds, 2),
        "samples_per_second": round(len(inputs) / seconds, 2) if seconds else None,
    }


COLUMN_SETTINGS = (
    "text_column",
    "label_column",
    "summary_column",
    "source_lang",
    "target_lang",
    "question_column",
    "context_column",
    "answers_column",
)


def _saved_columns(model: str) -> dict[str, Any]:
    """The column settings (and a translation's languages) of the run that trained `model`, if hfapps did."""
    import os

    import yaml

    from ..models import read_meta, resolve

    ref = resolve(model)[0]
    saved: dict[str, Any] = {}
    recipe = os.path.join(ref.path, "recipe.yaml")
    if ref.is_local and os.path.isfile(recipe):
        with open(recipe, encoding="utf-8") as handle:
            resolved = yaml.safe_load(handle) or {}
        saved.update({key: resolved[key] for key in COLUMN_SETTINGS if resolved.get(key) is not None})
    meta = read_meta(ref)
    saved.update({key: meta[key] for key in ("source_lang", "target_lang") if meta.get(key)})
    return saved


def evaluate_file(
    task: str, model: str, data_file: str, *, split: str = "test", max_samples: int | None = None, **columns: Any
) -> dict[str, Any]:
    """`hfapps evaluate TASK --model M --data FILE`: score a model on every row of a data file.

    The column settings of the run that trained the model (its recipe.yaml) are the defaults; the helper reads
    the rest of what the model was trained with (QA windows, generation length) from the model folder itself.
    """
    args = DataArguments(task=task, train_file=data_file, **{**_saved_columns(model), **columns})
    data = load_file(data_file, args)
    if max_samples is not None:
        data = data.select(range(min(max_samples, len(data))))
    if len(data) == 0:
        raise DataError(f"{data_file!r} has no rows.")
    spec = TRAINING[task](args)
    splits = spec.prepare(DatasetDict({split: data}))
    require_columns(splits, spec.columns())
    return {split: score_split(task, model, splits[split], args)}
