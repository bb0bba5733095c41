"""The one-call helpers. Each loads its model once (kept in a small cache) and runs it batched.

One text in gives one result, a list gives a list in input order, any other iterable a lazy stream. The
call options are the task's typed options (`hfapps.tasks.<task>`); the loading settings are `Settings`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

from typing_extensions import Unpack

if TYPE_CHECKING:
    import torch

    from ..tasks.base import Task

ModelArg = str | os.PathLike[str] | None
TaskName = Literal[
    "sentiment",
    "classification",
    "zero-shot",
    "summarization",
    "translation",
    "question-answering",
    "sentiment-analysis",
    "text-classification",
    "zero-shot-classification",
    "summarize",
    "translate",
    "qa",
    "answer",
    "classify",
    "chat",
    "text-generation",
    "generate",
    "generation",
]


class Settings(TypedDict, total=False):
    """How a helper loads and batches its model (the model is loaded once per distinct settings)."""

    device: str | int | torch.device | None  # "cpu", "cuda", "cuda:1", "mps"; default: the best there is
    dtype: str | torch.dtype | None  # "auto", "float32", "bfloat16", "float16"
    batch_size: int  # most texts a batch
    max_batch_tokens: int | None  # most padded tokens a batch
    trust_remote_code: bool  # let a model's own code run
    allow_pickle: bool  # accept pickle (.bin) weights
    progress: bool | None  # show a progress bar (default: on a terminal, for several batches)


class LoadSettings(Settings, total=False):
    source: str | None  # translation: the source language code
    target: str | None  # translation: the target language code


class GenerateOptions(Settings, total=False):
    """Summarize/translate: `Settings` plus the options passed on to `generate`."""

    max_new_tokens: int | None
    min_new_tokens: int | None
    max_length: int | None
    num_beams: int | None
    do_sample: bool | None
    temperature: float | None
    top_p: float | None
    repetition_penalty: float | None
    no_repeat_ngram_size: int | None
    length_penalty: float | None


class SummarizeOptions(GenerateOptions, total=False):
    """Summarize: `GenerateOptions` plus how a text over the model's window is handled."""

    long_input: Literal["map_reduce", "truncate"] | None
    chunk_tokens: int | None
    chunk_overlap: int | None


class TranslateOptions(GenerateOptions, total=False):
    """Translate: `GenerateOptions` plus how a long or multi-paragraph text is split."""

    long_input: Literal["split", "truncate"] | None
    chunk_tokens: int | None


class Label(TypedDict):
    label: str
    score: float


class ZeroShotResult(TypedDict):
    sequence: str
    labels: list[str]
    scores: list[float]


class Summary(TypedDict):
    summary_text: str


class TranslationResult(TypedDict):
    translation_text: str


class Answer(TypedDict):
    answer: str
    score: float
    start: int
    end: int


class QAInput(TypedDict):
    question: str
    context: str


Texts = list[str] | tuple[str, ...]
_UNSET: Any = object()  # classify's top_k: 1 for a fine-tuned classifier, every label for zero-shot
LOAD_SETTINGS = ("device", "dtype", "max_batch_tokens", "trust_remote_code", "allow_pickle", "progress")


def load(task: TaskName, model: ModelArg = None, **settings: Unpack[LoadSettings]) -> Task:
    """Load a model for `task` once and return a reusable callable object.

    `task` is one of "sentiment", "classification", "zero-shot", "summarization", "translation",
    "question-answering" (or a transformers alias). `model` is a Hub id, a local folder, a GGUF file or a
    `hfapps train` output; None picks the task's default. Translation also takes `source` and `target`.
    """
    from ..errors import InputError
    from ..tasks import task_class

    cls = task_class(task)
    allowed = set(LoadSettings.__optional_keys__) - {"source", "target"}
    allowed |= {info.name for info in cls.option_infos() if info.load}
    if unknown := sorted(set(settings) - allowed):
        raise InputError(
            f"Unknown setting(s) {unknown} for loading {cls.name}; it takes: {', '.join(sorted(allowed))}."
        )
    return cls(os.fspath(model) if model is not None else None, **settings)  # type: ignore[misc]


@functools.lru_cache(maxsize=4)
def _cached(task: str, model: str | None, settings: tuple[tuple[str, Any], ...]) -> Task:
    return load(task, model, **dict(settings))  # type: ignore[arg-type]


def clear_cache() -> None:
    """Drop the models the helpers keep loaded (GGUF models' de-quantised weights too)."""
    from ..models import clear_model_cache

    _cached.cache_clear()
    clear_model_cache()


def _run(
    task: str, inputs: Any, model: ModelArg, settings: dict[str, Any], options: dict[str, Any], **load_extra: Any
) -> Any:
    from ..tasks import task_class

    task = task_class(task).variant(options).name
    loading = {k: v for k, v in settings.items() if k in LOAD_SETTINGS or k in load_extra}
    loading.update(load_extra)
    call = {k: v for k, v in settings.items() if k not in loading}  # batch_size and generate options
    helper = _cached(task, os.fspath(model) if model is not None else None, tuple(sorted(loading.items())))
    return helper(inputs, **call, **{k: v for k, v in options.items() if v is not None or k == "top_k"})


@overload
def sentiment(texts: str, *, model: ModelArg = None, top_k: Literal[1] = 1, **settings: Unpack[Settings]) -> Label: ...
@overload
def sentiment(
    texts: Texts, *, model: ModelArg = None, top_k: Literal[1] = 1, **settings: Unpack[Settings]
) -> list[Label]: ...
@overload
def sentiment(
    texts: Iterable[str], *, model: ModelArg = None, top_k: Literal[1] = 1, **settings: Unpack[Settings]
) -> Iterator[Label]: ...
@overload
def sentiment(
    texts: str, *, model: ModelArg = None, top_k: int | None, **settings: Unpack[Settings]
) -> list[Label]: ...
@overload
def sentiment(
    texts: Texts, *, model: ModelArg = None, top_k: int | None, **settings: Unpack[Settings]
) -> list[list[Label]]: ...
@overload
def sentiment(
    texts: Iterable[str], *, model: ModelArg = None, top_k: int | None, **settings: Unpack[Settings]
) -> Iterator[list[Label]]: ...
def sentiment(
    texts: str | Iterable[str], *, model: ModelArg = None, top_k: int | None = 1, **settings: Unpack[Settings]
) -> Any:
    """`{"label", "score"}` for one text; a list of them for a list, in input order; a stream for an iterable.
    `top_k=N` gives the N best labels per text (None: all), best first.

    >>> hfapps.sentiment("I loved it")   # {"label": "POSITIVE", "score": 0.998}
    """
    return _run("sentiment", texts, model, dict(settings), {"top_k": top_k})


@overload
def classify(
    texts: str, *, model: ModelArg = None, labels: None = None, top_k: Literal[1] = 1, **settings: Unpack[Settings]
) -> Label: ...
@overload
def classify(
    texts: Texts, *, model: ModelArg = None, labels: None = None, top_k: Literal[1] = 1, **settings: Unpack[Settings]
) -> list[Label]: ...
@overload
def classify(
    texts: Iterable[str],
    *,
    model: ModelArg = None,
    labels: None = None,
    top_k: Literal[1] = 1,
    **settings: Unpack[Settings],
) -> Iterator[Label]: ...
@overload
def classify(
    texts: str, *, model: ModelArg = None, labels: None = None, top_k: int | None, **settings: Unpack[Settings]
) -> list[Label]: ...
@overload
def classify(
    texts: Texts, *, model: ModelArg = None, labels: None = None, top_k: int | None, **settings: Unpack[Settings]
) -> list[list[Label]]: ...
@overload
def classify(
    texts: Iterable[str],
    *,
    model: ModelArg = None,
    labels: None = None,
    top_k: int | None,
    **settings: Unpack[Settings],
) -> Iterator[list[Label]]: ...
@overload
def classify(
    texts: str,
    *,
    model: ModelArg = None,
    labels: list[str],
    top_k: int | None = None,
    multi_label: bool = False,
    hypothesis_template: str | None = None,
    **settings: Unpack[Settings],
) -> ZeroShotResult: ...
@overload
def classify(
    texts: Texts,
    *,
    model: ModelArg = None,
    labels: list[str],
    top_k: int | None = None,
    multi_label: bool = False,
    hypothesis_template: str | None = None,
    **settings: Unpack[Settings],
) -> list[ZeroShotResult]: ...
@overload
def classify(
    texts: Iterable[str],
    *,
    model: ModelArg = None,
    labels: list[str],
    top_k: int | None = None,
    multi_label: bool = False,
    hypothesis_template: str | None = None,
    **settings: Unpack[Settings],
) -> Iterator[ZeroShotResult]: ...
def classify(
    texts: str | Iterable[str],
    *,
    model: ModelArg = None,
    labels: list[str] | None = None,
    top_k: Any = _UNSET,
    multi_label: bool = False,
    hypothesis_template: str | None = None,
    **settings: Unpack[Settings],
) -> Any:
    """With a fine-tuned classifier: `{"label", "score"}` (`top_k=N` for the N best).
    With `labels=[...]`: zero-shot with an NLI model, `{"sequence", "labels", "scores"}` (all labels, or the
    `top_k` best)."""
    if labels is None:
        return _run("classification", texts, model, dict(settings), {"top_k": 1 if top_k is _UNSET else top_k})
    return _run(
        "classification",
        texts,
        model,
        dict(settings),
        {
            "labels": list(labels) if isinstance(labels, (list, tuple)) else labels,
            "top_k": None if top_k is _UNSET else top_k,
            "multi_label": multi_label,
            "hypothesis_template": hypothesis_template,
        },
    )


@overload
def summarize(texts: str, *, model: ModelArg = None, **options: Unpack[SummarizeOptions]) -> Summary: ...
@overload
def summarize(texts: Texts, *, model: ModelArg = None, **options: Unpack[SummarizeOptions]) -> list[Summary]: ...
@overload
def summarize(
    texts: Iterable[str], *, model: ModelArg = None, **options: Unpack[SummarizeOptions]
) -> Iterator[Summary]: ...
def summarize(texts: str | Iterable[str], *, model: ModelArg = None, **options: Unpack[SummarizeOptions]) -> Any:
    """`{"summary_text"}` per text. Generation options (`max_new_tokens`, `num_beams`, ...) pass to `generate`; a
    text over the model's window is summarized map-reduce (`long_input`, `chunk_tokens`, `chunk_overlap`)."""
    return _run("summarization", texts, model, dict(options), {})


@overload
def translate(
    texts: str,
    *,
    source: str | None = None,
    target: str | None = None,
    model: ModelArg = None,
    **options: Unpack[TranslateOptions],
) -> TranslationResult: ...
@overload
def translate(
    texts: Texts,
    *,
    source: str | None = None,
    target: str | None = None,
    model: ModelArg = None,
    **options: Unpack[TranslateOptions],
) -> list[TranslationResult]: ...
@overload
def translate(
    texts: Iterable[str],
    *,
    source: str | None = None,
    target: str | None = None,
    model: ModelArg = None,
    **options: Unpack[TranslateOptions],
) -> Iterator[TranslationResult]: ...
def translate(
    texts: str | Iterable[str],
    *,
    source: str | None = None,
    target: str | None = None,
    model: ModelArg = None,
    **options: Unpack[TranslateOptions],
) -> Any:
    """`{"translation_text"}` per text. Without a model, uses `Helsinki-NLP/opus-mt-{source}-{target}`. A long or
    multi-paragraph text is translated a few sentences at a time and joined in order (`long_input`,
    `chunk_tokens`)."""
    return _run("translation", texts, model, dict(options), {}, source=source, target=target)


@overload
def answer(
    question: str,
    context: str,
    *,
    model: ModelArg = None,
    inputs: None = None,
    top_k: Literal[1] = 1,
    max_answer_len: int | None = None,
    max_seq_len: int | None = None,
    doc_stride: int | None = None,
    **settings: Unpack[Settings],
) -> Answer: ...
@overload
def answer(
    question: Texts,
    context: str | Texts,
    *,
    model: ModelArg = None,
    inputs: None = None,
    top_k: Literal[1] = 1,
    max_answer_len: int | None = None,
    max_seq_len: int | None = None,
    doc_stride: int | None = None,
    **settings: Unpack[Settings],
) -> list[Answer]: ...
@overload
def answer(
    question: None = None,
    context: None = None,
    *,
    model: ModelArg = None,
    inputs: list[QAInput],
    top_k: Literal[1] = 1,
    max_answer_len: int | None = None,
    max_seq_len: int | None = None,
    doc_stride: int | None = None,
    **settings: Unpack[Settings],
) -> list[Answer]: ...
@overload
def answer(
    question: None = None,
    context: None = None,
    *,
    model: ModelArg = None,
    inputs: Iterable[QAInput],
    top_k: Literal[1] = 1,
    max_answer_len: int | None = None,
    max_seq_len: int | None = None,
    doc_stride: int | None = None,
    **settings: Unpack[Settings],
) -> Iterator[Answer]: ...
@overload
def answer(
    question: str | Texts | None = None,
    context: str | Texts | None = None,
    *,
    model: ModelArg = None,
    inputs: Iterable[QAInput] | None = None,
    top_k: int,
    max_answer_len: int | None = None,
    max_seq_len: int | None = None,
    doc_stride: int | None = None,
    **settings: Unpack[Settings],
) -> Any: ...
def answer(
    question: str | Texts | None = None,
    context: str | Texts | None = None,
    *,
    model: ModelArg = None,
    inputs: Iterable[QAInput] | None = None,
    top_k: int = 1,
    max_answer_len: int | None = None,
    max_seq_len: int | None = None,
    doc_stride: int | None = None,
    **settings: Unpack[Settings],
) -> Any:
    """Extractive QA: `{"answer", "score", "start", "end"}` (`top_k=N` for a list of the N best).

    One question and context give one result; a list of questions (with one context, or a list of
    contexts) gives a list. `inputs=` takes a list or iterable of `{"question", "context"}` dicts.
    """
    from ..tasks.question_answering import pair_up

    items = inputs if inputs is not None else pair_up(question, context)
    return _run(
        "question-answering",
        items,
        model,
        dict(settings),
        {"top_k": top_k, "max_answer_len": max_answer_len, "max_seq_len": max_seq_len, "doc_stride": doc_stride},
    )
