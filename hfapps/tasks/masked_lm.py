"""Continued pre-training: masked-language modelling on unlabelled in-domain text.

The "pre-train, then fine-tune" path: run `recipes/mlm.yaml` on your raw text, then give its output
folder as `model_name_or_path` to a task recipe. Scored by eval loss and perplexity.
"""

from __future__ import annotations

import math
from typing import Any

from datasets import Dataset, DatasetDict
from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling

from ..data import SAMPLE_DIR, read_file, require_text
from .registry import register
from .training import TaskTraining


@register
class MaskedLMTraining(TaskTraining):
    name = "mlm"
    auto_model = AutoModelForMaskedLM
    training_defaults = {"ddp_find_unused_parameters": False}

    def load_sample(self) -> Dataset:
        """Every text of hfapps' sample data, unlabelled."""
        texts = [
            *read_file(f"{SAMPLE_DIR}/sentiment.csv")["text"],
            *read_file(f"{SAMPLE_DIR}/topics.csv")["text"],
            *read_file(f"{SAMPLE_DIR}/summarization.jsonl")["document"],
        ]
        return Dataset.from_dict({self.args.text_column: texts})

    def check(self, splits: DatasetDict) -> None:
        for name, split in splits.items():
            require_text(split, self.args.text_column, name)

    def tokenize(self, split: Dataset, tokenizer, model_config) -> Dataset:
        def encode(batch):
            return tokenizer(
                batch[self.args.text_column],
                truncation=True,
                max_length=self.args.max_seq_length,
                return_special_tokens_mask=True,
            )

        return self.encoded(split, encode, tokenizer)

    def collator(self, tokenizer, model):
        return DataCollatorForLanguageModeling(tokenizer, mlm_probability=self.args.mlm_probability)

    def meta(self, tokenizer, model_config) -> dict[str, Any]:
        return {"task": "mlm"}

    def evaluation_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        if "eval_loss" in metrics:
            metrics["perplexity"] = math.exp(min(metrics["eval_loss"], 50))  # past e^50 it says nothing more
        return metrics
