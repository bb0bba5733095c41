"""Summarization: `{"summary_text": ...}` per text, from an encoder-decoder model or a chat model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from .. import metrics
from ..inference.long_input import Chunker
from . import samples
from .call_options import option
from .registry import register
from .text2text import GenerationOptions, Seq2SeqTraining, TextToText

logger = logging.getLogger("hfapps")

#: A chat model's chunks stay this short by default: small chat models summarize short texts better.
CHAT_CHUNK_TOKENS = 1024
#: Tokens of the previous chunk's last sentences that a chunk repeats, by default.
CHUNK_OVERLAP = 32
#: Map-reduce rounds before a text that will not shrink is truncated instead.
MAX_ROUNDS = 6


class SummarizationTraining(Seq2SeqTraining):
    """Fine-tune on (text_column, summary_column) pairs; scored with ROUGE-1/2/L/Lsum."""

    sample_file = "summarization.jsonl"
    sample_columns = {"document": "text_column", "summary": "summary_column"}

    def source_target(self) -> tuple[str, str]:
        return self.args.text_column, self.args.summary_column

    def task_prefix_key(self) -> str:
        return "summarization"

    def meta(self, tokenizer, model_config) -> dict[str, Any]:
        return {"task": "summarization", "prefix": self.prefix(model_config)}

    def score(self, predictions: list[Any], split: Dataset, model_config) -> dict[str, Any]:
        texts = [p["summary_text"] for p in predictions]
        return metrics.load("rouge").compute(predictions=texts, references=self.references(split))


@dataclass(frozen=True)
class SummarizationOptions(GenerationOptions):
    long_input: str | None = option(
        "map_reduce",
        "texts over the model's window: 'map_reduce' summarizes sentence-aligned chunks, then "
        "their joined summaries, until it fits; 'truncate' keeps the start",
        choices=("map_reduce", "truncate"),
    )
    chunk_tokens: int | None = option(
        None, minimum=16, help="tokens per chunk of a long text (default: the model's window; 1024 for a chat model)"
    )
    chunk_overlap: int | None = option(
        CHUNK_OVERLAP, minimum=0, help="a chunk repeats the previous one's last sentences, up to this many tokens"
    )


@register
class Summarization(TextToText):
    """Default: distilbart-cnn-12-6, the transformers 4 `summarization` default. T5 models get their
    `summarize: ` prefix and settings from the checkpoint. Options go to `generate` (`max_new_tokens`,
    `min_new_tokens`, `num_beams`, ...).

    A text over the model's window is summarized map-reduce: cut at sentence ends into chunks that fit
    (`chunk_tokens`, overlapping by `chunk_overlap`), each chunk summarized, and the joined summaries summarized
    again until they fit in one piece. The chunks of every text of a call share the length-sorted batches.
    `long_input="truncate"` keeps only the start of a long text instead (with a warning)."""

    name = "summarization"
    aliases = ("summarize",)
    command = "summarize"
    options = SummarizationOptions
    training = SummarizationTraining
    default_model = "sshleifer/distilbart-cnn-12-6"
    pipeline_name = "hfapps-summarization"
    output_key = "summary_text"

    @classmethod
    def sample_inputs(cls) -> tuple[list[Any], dict[str, Any]]:
        return samples.column("summarization.jsonl", "document")[:6], {"max_new_tokens": 48}

    def _prompt(self, text: str, **task_options: Any) -> str:
        return f"Summarize the following text in a few sentences. Reply with the summary only.\n\n{text}"

    def _run(self, items: list[str], options: dict[str, Any], show_progress: bool | None = None) -> list[Any]:
        if options.get("long_input") == "truncate":
            return super()._run(items, options, show_progress)
        default = CHAT_CHUNK_TOKENS if self.chat is not None else self.window_tokens
        overlap = options.get("chunk_overlap")
        chunker = Chunker(
            self.tokenizer, self._chunk_budget(options, default), CHUNK_OVERLAP if overlap is None else overlap
        )
        texts = list(items)
        sizes = chunker.count(texts)
        results: list[Any] = [None] * len(texts)
        pending = list(range(len(texts)))
        for round_ in range(1, MAX_ROUNDS + 2):
            pieces: list[str] = []
            spans: list[tuple[int, int, int, bool]] = []  # (text index, first piece, piece count, last round)
            for index in pending:
                fits = sizes[index] <= chunker.budget or round_ > MAX_ROUNDS
                chunks = [texts[index]] if fits else chunker.document_chunks(texts[index])
                spans.append((index, len(pieces), len(chunks), fits))
                pieces += chunks
            outputs = super()._run(pieces, options, show_progress)
            pending = []
            for index, first, count, fits in spans:
                if fits:
                    results[index] = outputs[first]
                    continue
                summaries = [out[self.output_key] for out in outputs[first : first + count]]
                if not any(summary.strip() for summary in summaries):
                    results[index] = {self.output_key: ""}
                    continue
                joined = "\n\n".join(summary for summary in summaries if summary.strip())
                size = chunker.count([joined])[0]
                if size >= sizes[index]:  # the summaries are no shorter than their text: stop reducing
                    logger.warning(
                        "Summaries of text %d's chunks are no shorter than the text; summarizing "
                        "its start only. Pass max_new_tokens= to keep chunk summaries short.",
                        index,
                    )
                    size = 0
                    joined = texts[index]
                texts[index], sizes[index] = joined, size
                pending.append(index)
            if not pending:
                break
        return results
