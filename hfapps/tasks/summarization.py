"""Summarization: `{"summary_text": ...}` per text, from an encoder-decoder model or a chat model."""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from .. import metrics
from .registry import register
from .text2text import GenerationOptions, Seq2SeqTraining, TextToText


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


@register
class Summarization(TextToText):
    """Default: distilbart-cnn-12-6, the transformers 4 `summarization` default. T5 models get their
    `summarize: ` prefix and settings from the checkpoint. Texts over the model's window are truncated
    with a warning. Options go to `generate` (`max_new_tokens`, `min_new_tokens`, `num_beams`, ...)."""

    name = "summarization"
    aliases = ("summarize",)
    command = "summarize"
    options = GenerationOptions
    training = SummarizationTraining
    default_model = "sshleifer/distilbart-cnn-12-6"
    pipeline_name = "hfapps-summarization"
    output_key = "summary_text"

    def _prompt(self, text: str, **task_options: Any) -> str:
        return f"Summarize the following text in a few sentences. Reply with the summary only.\n\n{text}"

