"""The one-call helpers. Each loads its model once (kept in a small cache) and runs it batched."""

from __future__ import annotations

import functools
import os
from typing import Any

import torch

from .errors import InputError
from .tasks import TASKS, Task
from .tasks.question_answering import pair_up

ModelArg = str | os.PathLike | None
LOAD_OPTIONS = ("device", "dtype", "batch_size", "max_batch_tokens", "trust_remote_code", "allow_pickle", "progress")

ALIASES = {
    "sentiment-analysis": "sentiment",
    "text-classification": "classification",
    "classify": "classification",
    "zero-shot-classification": "zero-shot",
    "summarize": "summarization",
    "translate": "translation",
    "qa": "question-answering",
    "answer": "question-answering",
}


def load(task: str, model: ModelArg = None, *, device: str | int | torch.device | None = None,
         dtype: str | torch.dtype | None = None, **options: Any) -> Task:
    """Load a model for `task` once and return a reusable callable object.

    `task` is one of "sentiment", "classification", "zero-shot", "summarization", "translation",
    "question-answering" (or a transformers alias). `model` is a Hub id, a local folder, a GGUF file or a
    `hfapps train` output; None picks the task's default. Other options: `batch_size`,
    `max_batch_tokens`, `trust_remote_code`, `allow_pickle`, `progress`; translation also `source`, `target`.
    """
    name = ALIASES.get(task, task)
    if name not in TASKS:
        raise InputError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    return TASKS[name](model, device=device, dtype=dtype, **options)


@functools.lru_cache(maxsize=4)
def _cached(task: str, model: ModelArg, options: tuple[tuple[str, Any], ...]) -> Task:
    return load(task, model, **dict(options))


def clear_cache() -> None:
    """Drop the models the helpers keep loaded."""
    _cached.cache_clear()


def _run(task: str, inputs: Any, model: ModelArg, kwargs: dict[str, Any], **load_extra: Any) -> Any:
    load_options = {k: kwargs.pop(k) for k in LOAD_OPTIONS if k in kwargs and k != "batch_size"}
    load_options.update(load_extra)
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    return _cached(task, model, tuple(sorted(load_options.items())))(inputs, **kwargs)


def sentiment(texts: Any, *, model: ModelArg = None, **kwargs: Any) -> Any:
    """`{"label", "score"}` for one text; a list of them for a list, in input order; a stream for an iterable.

    >>> hfapps.sentiment("I loved it")   # {"label": "POSITIVE", "score": 0.998}
    """
    return _run("sentiment", texts, model, kwargs)


def classify(texts: Any, *, model: ModelArg = None, labels: list[str] | None = None, **kwargs: Any) -> Any:
    """With a fine-tuned classifier: `{"label", "score"}` (`top_k=N` for the N best).
    With `labels=[...]`: zero-shot with an NLI model, `{"sequence", "labels", "scores"}`."""
    if labels is not None:
        return _run("zero-shot", texts, model, {**kwargs, "labels": tuple(labels) if isinstance(labels, list) else labels})
    return _run("classification", texts, model, kwargs)


def summarize(texts: Any, *, model: ModelArg = None, **kwargs: Any) -> Any:
    """`{"summary_text"}` per text. Generation options (`max_new_tokens`, `num_beams`, ...) pass to `generate`."""
    return _run("summarization", texts, model, kwargs)


def translate(texts: Any, *, source: str | None = None, target: str | None = None, model: ModelArg = None,
              **kwargs: Any) -> Any:
    """`{"translation_text"}` per text. Without a model, uses `Helsinki-NLP/opus-mt-{source}-{target}`."""
    if model is None:
        from .tasks.translation import default_model

        model = default_model(source, target)
    return _run("translation", texts, model, {**kwargs, "source": source, "target": target})


def answer(question: Any = None, context: Any = None, *, model: ModelArg = None, inputs: Any = None,
           **kwargs: Any) -> Any:
    """Extractive QA: `{"answer", "score", "start", "end"}` (`top_k=N` for a list of the N best).

    One question and context give one result; a list of questions (with one context, or a list of
    contexts) gives a list. `inputs=` takes a list or iterable of `{"question", "context"}` dicts.
    """
    items = inputs if inputs is not None else pair_up(question, context)
    return _run("question-answering", items, model, kwargs)
