"""Zero-shot classification: any labels, no training, with a natural-language-inference (NLI) model."""

from __future__ import annotations

from typing import Any

from transformers import AutoModelForSequenceClassification, pipeline

from .. import models
from ..errors import InputError, TaskMismatchError
from .base import Task


class ZeroShot(Task):
    """Wraps transformers' `zero-shot-classification` pipeline: each text is scored against each label.

    Results keep the transformers 4 keys: `{"sequence", "labels", "scores"}`, best label first.
    """

    name = "zero-shot"
    default_model = "facebook/bart-large-mnli"

    def _build(self, *, allow_pickle: bool) -> None:
        models.require_head(
            self.config, self.ref, suffixes=("ForSequenceClassification",), task="zero-shot (NLI)",
            hint="Zero-shot needs a model fine-tuned on NLI (MNLI, XNLI), e.g. facebook/bart-large-mnli.",
        )
        label2id = {str(k).lower(): v for k, v in (self.config.label2id or {}).items()}
        if not any(label.startswith("entail") for label in label2id):
            raise TaskMismatchError(
                f"{self.ref.name!r} has labels {sorted(self.config.label2id)}, with no 'entailment' label, so it is "
                "not an NLI model. Zero-shot needs one (e.g. facebook/bart-large-mnli); for its own labels use "
                "classify(texts, model=...) without labels=."
            )
        model = self._load(AutoModelForSequenceClassification, allow_pickle=allow_pickle)
        self.pipeline = pipeline(
            "zero-shot-classification", model=model, tokenizer=self.tokenizer, device=self.device
        )

    def _predict(self, batch: list[str], options: dict[str, Any]) -> list[Any]:
        labels = options.pop("labels", None)
        top_k = options.pop("top_k", None)
        extra = {k: options.pop(k) for k in ("multi_label", "hypothesis_template") if k in options}
        if options:
            raise InputError(f"Unknown option(s) {sorted(options)} for zero-shot; known: labels, top_k, "
                             "multi_label, hypothesis_template, batch_size.")
        if isinstance(labels, str):
            labels = [labels]
        if not labels or not all(isinstance(label, str) and label.strip() for label in labels):
            raise InputError(f"labels must be a non-empty list of non-empty strings, got {labels!r}.")
        outputs = self.pipeline(
            batch, candidate_labels=list(labels), batch_size=len(batch) * len(labels), **extra
        )
        if top_k is not None:
            outputs = [{**out, "labels": out["labels"][:top_k], "scores": out["scores"][:top_k]} for out in outputs]
        return outputs
