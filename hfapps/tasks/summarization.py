"""Summarization: `{"summary_text": ...}` per text, from an encoder-decoder model or a chat model."""

from __future__ import annotations

from .text2text import TextToText


class Summarization(TextToText):
    """Default: distilbart-cnn-12-6, the transformers 4 `summarization` default. T5 models get their
    `summarize: ` prefix and settings from the checkpoint. Texts over the model's window are truncated
    with a warning. Options go to `generate` (`max_new_tokens`, `min_new_tokens`, `num_beams`, ...)."""

    name = "summarization"
    default_model = "sshleifer/distilbart-cnn-12-6"
    pipeline_name = "hfapps-summarization"
    output_key = "summary_text"

    def _prompt(self, text: str) -> str:
        return f"Summarize the following text in a few sentences. Reply with the summary only.\n\n{text}"
