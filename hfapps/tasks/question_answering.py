"""Extractive question answering: the answer is a span of the context, with its character offsets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datasets import Dataset, DatasetDict
from transformers import AutoModelForQuestionAnswering
from transformers import pipeline as make_pipeline

from .. import metrics, models
from ..data import require_text
from ..errors import DataError, InputError
from ..inference.inputs import check_text
from . import samples
from .base import Task
from .call_options import option
from .registry import register
from .training import TaskTraining

if TYPE_CHECKING:
    import argparse


@dataclass(frozen=True)
class QuestionAnsweringOptions:
    top_k: int = option(1, minimum=1, help="how many answers per question; above 1 gives a list, best first")
    max_answer_len: int | None = option(None, minimum=1, help="the longest answer, in tokens (default 15)")
    max_seq_len: int | None = option(
        None, minimum=16, help="window length in tokens (default: the trained window, else 384)"
    )
    doc_stride: int | None = option(
        None, minimum=0, help="overlap between windows in tokens (default: the trained one, else 128)"
    )
    max_question_len: int | None = option(None, minimum=1, help="the longest question, in tokens (default 64)")
    align_to_words: bool | None = option(None, "widen answers to whole words (default true)")


class QuestionAnsweringTraining(TaskTraining):
    """Fine-tune an encoder for extractive QA on SQuAD-format data (question, context, answers with
    `text` and `answer_start`); long contexts become several windows; scored with SQuAD EM and F1."""

    peft_task_type = "QUESTION_ANS"
    auto_model = AutoModelForQuestionAnswering
    sample_file = "qa.json"
    sample_columns = {"question": "question_column", "context": "context_column", "answers": "answers_column"}

    def columns(self) -> list[str]:
        return [self.args.question_column, self.args.context_column, self.args.answers_column]

    def check(self, splits: DatasetDict) -> None:
        question, context, answers = self.columns()
        for name, split in splits.items():
            require_text(split, question, name)
            require_text(split, context, name)
            for index, (ctx, ans) in enumerate(zip(split[context], split[answers])):
                if not isinstance(ans, dict) or "text" not in ans or "answer_start" not in ans:
                    raise DataError(
                        f"Row {index} of the {name} split: {answers!r} must be {{'text': [...], "
                        f"'answer_start': [...]}} (SQuAD format), got {ans!r:.80}."
                    )
                if not ans["text"]:
                    raise DataError(
                        f"Row {index} of the {name} split has no answer; extractive QA training "
                        "needs at least one answer per question."
                    )
                for text, start in zip(ans["text"], ans["answer_start"]):
                    if ctx[start : start + len(text)] != text:
                        raise DataError(
                            f"Row {index} of the {name} split: the answer {text!r} is not at "
                            f"answer_start {start} of its context (found "
                            f"{ctx[start : start + len(text)]!r})."
                        )

    def tokenize(self, split: Dataset, tokenizer, model_config) -> Dataset:
        question, context, answers = self.columns()
        question_first = tokenizer.padding_side == "right"

        def encode(batch):
            questions = [q.lstrip() for q in batch[question]]
            pair = (questions, batch[context]) if question_first else (batch[context], questions)
            encoded = tokenizer(
                *pair,
                truncation="only_second" if question_first else "only_first",
                max_length=self.args.max_seq_length,
                stride=self.args.doc_stride,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
            )
            owners = encoded.pop("overflow_to_sample_mapping")
            starts, ends = [], []
            for window, offsets in enumerate(encoded.pop("offset_mapping")):
                answer = batch[answers][owners[window]]
                first_char = answer["answer_start"][0]
                last_char = first_char + len(answer["text"][0])
                ids = encoded.sequence_ids(window)
                in_context = [i for i, s in enumerate(ids) if s == (1 if question_first else 0)]
                lo, hi = in_context[0], in_context[-1]
                if offsets[lo][0] > first_char or offsets[hi][1] < last_char:
                    starts.append(0)  # the answer is not in this window: point at [CLS]
                    ends.append(0)
                    continue
                start = lo
                while start <= hi and offsets[start][0] <= first_char:
                    start += 1
                end = hi
                while end >= lo and offsets[end][1] >= last_char:
                    end -= 1
                starts.append(start - 1)
                ends.append(end + 1)
            encoded["start_positions"], encoded["end_positions"] = starts, ends
            return encoded

        return self.encoded(split, encode, tokenizer)

    def helper_inputs(self, split: Dataset) -> list[Any]:
        question, context, _ = self.columns()
        return [{"question": q, "context": c} for q, c in zip(split[question], split[context])]

    def meta(self, tokenizer, model_config) -> dict[str, Any]:
        return {
            "task": "question-answering",
            "max_seq_len": self.args.max_seq_length,
            "doc_stride": self.args.doc_stride,
        }

    def score(self, predictions: list[Any], split: Dataset, model_config) -> dict[str, Any]:
        references = [a["text"] for a in split[self.args.answers_column]]
        return metrics.load("squad").compute(predictions=[p["answer"] for p in predictions], references=references)


@register
class QuestionAnswering(Task):
    """`{"answer", "score", "start", "end"}` per question (a list of `top_k` when `top_k > 1`).

    Contexts longer than the model's window are read in overlapping windows (`doc_stride`), so an
    answer anywhere in a long document is found. Default: the SQuAD DistilBERT the transformers 4
    `question-answering` pipeline used. Options: `top_k`, `max_answer_len`, `max_seq_len`, `doc_stride`.
    """

    name = "question-answering"
    aliases = ("qa", "answer")
    command = "answer"
    default_model = "distilbert/distilbert-base-cased-distilled-squad"
    options = QuestionAnsweringOptions
    training = QuestionAnsweringTraining
    what = "question"
    truncates = False
    input_fields = ("question", "context")
    export_format = "onnx"
    agreement_key = "answer"

    @classmethod
    def claims(cls, config: Any) -> int:
        return 1 if models.model_kind(config) == "encoder" and models.has_head(config, "ForQuestionAnswering") else 0

    @classmethod
    def export_auto_class(cls, config: Any) -> type:
        return AutoModelForQuestionAnswering

    @classmethod
    def sample_inputs(cls) -> tuple[list[Any], dict[str, Any]]:
        return samples.questions()[: samples.CARD_QUESTIONS], {}

    @classmethod
    def calibration_inputs(cls, path: str | os.PathLike | None = None) -> tuple[list[Any], str]:
        if path is None:
            return (
                [(q["question"], q["context"]) for q in samples.questions()[samples.CARD_QUESTIONS :]],
                samples.SAMPLE_DATA,
            )
        return super().calibration_inputs(path)

    def _build(self, *, allow_pickle: bool) -> None:
        models.require_head(
            self.config,
            self.ref,
            suffixes=("ForQuestionAnswering",),
            task="extractive question-answering",
            hint="Pass a model fine-tuned for extractive QA (e.g. on SQuAD), or fine-tune one with "
            "`hfapps train recipes/question_answering.yaml`.",
        )
        from .. import pipelines  # noqa: F401  (registers hfapps' pipelines with transformers)

        model = self._load(AutoModelForQuestionAnswering, allow_pickle=allow_pickle)
        self.pipeline = make_pipeline(
            "hfapps-question-answering", model=model, tokenizer=self.tokenizer, device=self.device
        )

    def __call__(self, inputs: Any = None, *, question: Any = None, context: Any = None, **options: Any) -> Any:
        """`task({"question", "context"})`, a list or stream of such dicts, or `task(question=..., context=...)`."""
        if inputs is None:
            inputs = pair_up(question, context)
        elif question is not None or context is not None:
            raise InputError("Pass either inputs or question=/context=, not both.")
        return super().__call__(inputs, **options)

    def _check(self, item: Any, index: int | None) -> dict[str, str]:
        where = "" if index is None else f" at index {index}"
        if not isinstance(item, dict) or not {"question", "context"} <= item.keys():
            raise InputError(f"Each QA input{where} must be a dict with 'question' and 'context', got {item!r:.80}.")
        if item["context"] is None or (isinstance(item["context"], str) and not item["context"].strip()):
            raise InputError(f"The question{where} has no context; extractive QA finds its answer in a context.")
        return {
            "question": check_text(item["question"], index, what="question"),
            "context": check_text(item["context"], index, what="context"),
        }

    def _text_of(self, item: dict[str, str]) -> str:
        return item["context"]

    def _predict(self, batch: list[dict[str, str]], options: QuestionAnsweringOptions) -> list[Any]:
        given = {k: v for k, v in vars(options).items() if v is not None}
        # A `hfapps train` output reads contexts with the window it was trained with.
        window: dict[str, Any] = {k: self.meta[k] for k in ("max_seq_len", "doc_stride") if k in self.meta}
        return self.pipeline(batch, batch_size=len(batch), **{**window, **given})

    # -- the command line: questions and contexts instead of texts -------------------------------

    @classmethod
    def add_input_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--question", action="append", help="a question (repeatable)")
        parser.add_argument("--context", help="the text the answers are found in")
        parser.add_argument("--question-column", default="question", help="column holding the question in --input")
        parser.add_argument("--context-column", default="context", help="column holding the context in --input")

    @classmethod
    def input_columns(cls, args: argparse.Namespace) -> tuple[str, ...]:
        return (args.question_column, args.context_column)

    @classmethod
    def rows_from_arguments(cls, args: argparse.Namespace) -> list[dict[str, Any]]:
        if not args.question or args.context is None:
            raise InputError("answer needs --question and --context, or --input with question/context columns.")
        return [{args.question_column: question, args.context_column: args.context} for question in args.question]

    @classmethod
    def input_of(cls, row: dict[str, Any], args: argparse.Namespace) -> Any:
        return {"question": row[args.question_column], "context": row[args.context_column]}


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
