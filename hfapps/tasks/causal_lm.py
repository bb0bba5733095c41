"""Continued pre-training of a causal language model on raw text: next-token prediction over fixed-length blocks.

The "pre-train, then fine-tune" path for decoders, as `mlm` is for encoders: run `recipes/clm.yaml` on your domain
text (TXT, one text per line, or a JSONL/CSV/Parquet `text` column), then chat with, generate with or fine-tune the
output folder. The texts are tokenised, each ended with the end token, joined and cut into blocks of
`max_seq_length` tokens (the last, shorter block is dropped); scored by held-out loss and perplexity.
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

from datasets import Dataset
from transformers import AutoModelForCausalLM, DataCollatorForLanguageModeling

from .registry import register
from .training import UnlabelledTextTraining


@register
class CausalLMTraining(UnlabelledTextTraining):
    name = "clm"
    auto_model = AutoModelForCausalLM
    peft_task_type = "CAUSAL_LM"
    training_defaults = {"ddp_find_unused_parameters": False}

    def tokenize(self, split: Dataset, tokenizer, model_config) -> Dataset:
        block = self.args.max_seq_length
        end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

        def encode(batch):
            ids = tokenizer(batch[self.args.text_column], add_special_tokens=False)["input_ids"]
            joined = list(chain.from_iterable(row + end for row in ids))
            blocks = [joined[i : i + block] for i in range(0, len(joined) - block + 1, block)]
            if not blocks and joined:  # less text than one block: train on what there is
                blocks = [joined]
            return {"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks]}

        return self.encoded(split, encode, tokenizer)

    def collator(self, tokenizer, model):
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return DataCollatorForLanguageModeling(tokenizer, mlm=False)  # labels are the inputs; the model shifts them

    def meta(self, tokenizer, model_config) -> dict[str, Any]:
        return {"task": "clm"}

    def evaluation_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        if "eval_loss" in metrics:
            metrics["perplexity"] = math.exp(min(metrics["eval_loss"], 50))  # past e^50 it says nothing more
        return metrics
