"""Tiny causal language models for the language-model tests.

`make_tiny_lm(path)` writes a 2-layer Llama with random weights and a byte-level BPE tokenizer whose alphabet is
printable ASCII only (so any token sequence decodes to readable text, JSON punctuation included) and a ChatML chat
template. Greedy decoding is deterministic, so a test reads what the model says once and asserts on it.
"""

from __future__ import annotations

import string

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = [
    "the film was great and the team was boring today",
    "my doctor said the new album is wonderful, to be honest",
    'answer in JSON: {"label": "positive", "score": 5} or {"label": "negative", "score": 1}',
    "a quiet river, a loud city; the museum [open] at 10:30!",
    "Hello there. How are you? I am fine, thanks.",
]


def tokenizer(window: int = 256) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    ascii_bytes = [pre_tokenizers.ByteLevel.alphabet()]  # every byte's character...
    printable = {chr(b) for b in range(32, 127)} | {"Ġ", "Ċ"}  # ...but keep ASCII text, space and newline only
    alphabet = sorted(set(ascii_bytes[0]) & (printable | set(string.printable)))
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=special, initial_alphabet=alphabet, limit_alphabet=200)
    tok.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=window,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token="<|im_start|>",
    )
    fast.chat_template = CHATML
    return fast


def make_tiny_lm(path: str, seed: int = 0, window: int = 256) -> str:
    tok = tokenizer(window)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=window,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        architectures=["LlamaForCausalLM"],
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # never pick the end token by chance: the tests choose how answers end
        model.lm_head.weight[tok.eos_token_id].zero_()
        model.model.embed_tokens.weight[tok.eos_token_id].zero_()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> str:
    """A tiny chat-capable causal LM folder (import this fixture into a test module to use it)."""
    return make_tiny_lm(str(tmp_path_factory.mktemp("lm") / "tiny-lm"))
