"""Zero-shot classification: any labels, no training, with a natural-language-inference (NLI) model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import AutoModelForSequenceClassification, pipeline

from .. import models
from ..errors import InputError, TaskMismatchError
from .base import Task
from .call_options import option
from .registry import register


@dataclass(frozen=True)
class ZeroShotOptions:
    labels: list[str] | None = option(None, "the candidate labels (required)")
    top_k: int | None = option(None, minimum=1, help="keep the N best labels (default: all)")
    multi_label: bool = option(False, "score each label on its own (several may be true)")
    hypothesis_template: str | None = option(None, "the NLI hypothesis, e.g. 'This text is about {}.'")


@register
class ZeroShot(Task):
    """Wraps transformers' `zero-shot-classification` pipeline: each text is scored against each label.

    Results keep the transformers 4 keys: `{"sequence", "labels", "scores"}`, best label first.
    """

    name = "zero-shot"
    aliases = ("zero-shot-classification",)
    default_model = "facebook/bart-large-mnli"
    export_format = "onnx"  # an NLI classifier's export runs zero-shot classification

    @classmethod
    def export_auto_class(cls, config: Any) -> type:
        return AutoModelForSequenceClassification

    options = ZeroShotOptions

    def _build(self, *, allow_pickle: bool) -> None:
        models.require_head(
            self.config,
            self.ref,
            suffixes=("ForSequenceClassification",),
            task="zero-shot (NLI)",
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
        self.pipeline = pipeline("zero-shot-classification", model=model, tokenizer=self.tokenizer, device=self.device)

    def _predict(self, batch: list[str], options: ZeroShotOptions) -> list[Any]:
        labels, top_k = options.labels, options.top_k
        extra: dict[str, Any] = {"multi_label": options.multi_label}
        if options.hypothesis_template is not None:
            extra["hypothesis_template"] = options.hypothesis_template
        if not labels or not all(isinstance(label, str) and label.strip() for label in labels):
            raise InputError(f"labels must be a non-empty list of non-empty strings, got {labels!r}.")
        outputs = self.pipeline(batch, candidate_labels=list(labels), batch_size=len(batch) * len(labels), **extra)
        if top_k is not None:
            outputs = [{**out, "labels": out["labels"][:top_k], "scores": out["scores"][:top_k]} for out in outputs]
        return outputs
