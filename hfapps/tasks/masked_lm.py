"""Continued pre-training: masked-language modelling on unlabelled in-domain text.

The "pre-train, then fine-tune" path: run `recipes/mlm.yaml` on your raw text, then give its output
folder as `model_name_or_path` to a task recipe. Scored by eval loss and perplexity.
"""

from __future__ import annotations

import math
from typing import Any

from datasets import Dataset
from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling

from .registry import register
from .training import UnlabelledTextTraining


@register
class MaskedLMTraining(UnlabelledTextTraining):
    name = "mlm"
    auto_model = AutoModelForMaskedLM
    training_defaults = {"ddp_find_unused_parameters": False}

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
