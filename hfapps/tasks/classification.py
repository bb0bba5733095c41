"""Text classification with a fine-tuned head: any `...ForSequenceClassification` model, labels from its config."""

from __future__ import annotations

from typing import Any

from transformers import AutoModelForSequenceClassification, pipeline

from .. import models
from ..errors import InputError
from .base import Task


class Classification(Task):
    """Wraps transformers' `text-classification` pipeline with length-sorted batches.

    `top_k=1` (default) gives one `{"label", "score"}` per text; `top_k=N` or `None` gives a list of
    the N best (or all) labels, best first.
    """

    name = "classification"
    default_model = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"

    def _build(self, *, allow_pickle: bool) -> None:
        models.require_head(
            self.config, self.ref, suffixes=("ForSequenceClassification",), task="text-classification",
            hint="Pass a fine-tuned classifier, fine-tune this one with `hfapps train recipes/classification.yaml`, "
            "or pass labels=[...] for zero-shot classification.",
        )
        model = self._load(AutoModelForSequenceClassification, allow_pickle=allow_pickle)
        self.pipeline = pipeline(
            "text-classification", model=model, tokenizer=self.tokenizer, device=self.device
        )

    def _predict(self, batch: list[str], options: dict[str, Any]) -> list[Any]:
        top_k = options.pop("top_k", 1)
        if options:
            raise InputError(f"Unknown option(s) {sorted(options)} for {self.name}; known: top_k, batch_size.")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a positive int or None (all labels), got {top_k!r}.")
        outputs = self.pipeline(batch, batch_size=len(batch), top_k=top_k, truncation=True)
        return [out[0] if top_k == 1 else out for out in outputs]
