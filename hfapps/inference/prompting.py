"""Summarize and translate with a causal chat model, through transformers' `text-generation` pipeline.

This is the path transformers 5 recommends for these tasks. Any causal LM whose tokenizer has a
chat template works, GGUF files included (e.g. SmolLM2-135M-Instruct from the `demo` extra).
"""

from __future__ import annotations

from typing import Any

from transformers import pipeline


class ChatGenerator:
    """Greedy chat completion over batches of single-turn prompts."""

    def __init__(self, model, tokenizer, device) -> None:
        tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.pipeline = pipeline("text-generation", model=model, tokenizer=tokenizer, device=device)

    def __call__(self, prompts: list[str], **generate_kwargs: Any) -> list[str]:
        chats = [[{"role": "user", "content": prompt}] for prompt in prompts]
        generate_kwargs.setdefault("do_sample", False)
        outputs = self.pipeline(chats, batch_size=len(chats), return_full_text=False, **generate_kwargs)
        return [output[0]["generated_text"].strip() for output in outputs]

    def clip(self, text: str, max_tokens: int) -> str:
        return clip(self.tokenizer, text, max_tokens)


def clip(tokenizer: Any, text: str, max_tokens: int) -> str:
    """Cut `text` to its first `max_tokens` tokens, so that prompt + answer fit the context window."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])
