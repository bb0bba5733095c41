"""Extractive question answering: the answer is a span of the context, with its character offsets."""

from __future__ import annotations

from typing import Any

from transformers import AutoModelForQuestionAnswering
from transformers import pipeline as make_pipeline

from .. import models
from ..errors import InputError
from ..inputs import check_text
from .base import Task


class QuestionAnswering(Task):
    """`{"answer", "score", "start", "end"}` per question (a list of `top_k` when `top_k > 1`).

    Contexts longer than the model's window are read in overlapping windows (`doc_stride`), so an
    answer anywhere in a long document is found. Default: the SQuAD DistilBERT the transformers 4
    `question-answering` pipeline used. Options: `top_k`, `max_answer_len`, `max_seq_len`, `doc_stride`.
    """

    name = "question-answering"
    default_model = "distilbert/distilbert-base-cased-distilled-squad"
    what = "question"
    truncates = False

    def _build(self, *, allow_pickle: bool) -> None:
        models.require_head(
            self.config, self.ref, suffixes=("ForQuestionAnswering",), task="extractive question-answering",
            hint="Pass a model fine-tuned for extractive QA (e.g. on SQuAD), or fine-tune one with "
            "`hfapps train recipes/question_answering.yaml`.",
        )
        from .. import pipelines  # noqa: F401  (registers hfapps' pipelines with transformers)

        model = self._load(AutoModelForQuestionAnswering, allow_pickle=allow_pickle)
        self.pipeline = make_pipeline(
            "hfapps-question-answering", model=model, tokenizer=self.tokenizer, device=self.device
        )

    def _check(self, item: Any, index: int | None) -> dict[str, str]:
        where = "" if index is None else f" at index {index}"
        if not isinstance(item, dict) or not {"question", "context"} <= item.keys():
            raise InputError(f"Each QA input{where} must be a dict with 'question' and 'context', got {item!r:.80}.")
        if item["context"] is None or (isinstance(item["context"], str) and not item["context"].strip()):
            raise InputError(f"The question{where} has no context; extractive QA finds its answer in a context.")
        return {"question": check_text(item["question"], index, what="question"),
                "context": check_text(item["context"], index, what="context")}

    def _text_of(self, item: dict[str, str]) -> str:
        return item["context"]

    def _predict(self, batch: list[dict[str, str]], options: dict[str, Any]) -> list[Any]:
        known = {"top_k", "max_answer_len", "max_seq_len", "doc_stride", "max_question_len"}
        if unknown := set(options) - known:
            raise InputError(f"Unknown option(s) {sorted(unknown)} for answer; known: {sorted(known)}.")
        return self.pipeline(batch, batch_size=len(batch), **options)


def pair_up(question: Any, context: Any) -> Any:
    """Turn `answer(question=..., context=...)` arguments into one QA input or a list of them."""
    if question is None:
        raise InputError("answer needs question= (a string or a list of strings).")
    if context is None:
        raise InputError("answer needs context= : extractive QA finds its answer in a context you pass.")
    if isinstance(question, str):
        if not isinstance(context, str):
            raise InputError("One question takes one context string; for several questions pass a list of them.")
        return {"question": question, "context": context}
    if not isinstance(question, (list, tuple)):
        raise InputError(f"question must be a string or a list of strings, got {type(question).__name__}.")
    contexts = [context] * len(question) if isinstance(context, str) else context
    if not isinstance(contexts, (list, tuple)) or len(contexts) != len(question):
        raise InputError("Pass one context for all questions, or a list of contexts as long as the list of questions.")
    return [{"question": q, "context": c} for q, c in zip(question, contexts)]
