"""Tiny models built from scratch for the tests: a tokenizer trained on a few hundred sentences and
configs a few thousand parameters big. Random weights (except the QA model, whose weights are set by
hand so that its answer is known), saved as safetensors in ordinary model folders."""

from __future__ import annotations

import json
import os
import random

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    BertConfig,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertModel,
    BertTokenizerFast,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

SUBJECTS = [
    "the film",
    "this phone",
    "our hotel",
    "the team",
    "my doctor",
    "the new album",
    "that restaurant",
    "the city council",
    "this laptop",
    "the match",
    "the museum",
    "the river",
    "a zebra",
]
VERBS = ["was", "seemed", "is", "became", "looked", "felt"]
ADJECTIVES = [
    "great",
    "terrible",
    "boring",
    "wonderful",
    "slow",
    "fast",
    "cheap",
    "expensive",
    "quiet",
    "loud",
    "not bad",
    "surprisingly good",
    "awful",
    "brilliant",
]
TAILS = [
    "today",
    "last night",
    "in the end",
    "for everyone",
    "as usual",
    "again",
    "this year",
    "in Paris",
    "to be honest",
    "after the update",
]

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def sentences(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(ADJECTIVES)} {rng.choice(TAILS)}." for _ in range(n)
    ]


def bert_tokenizer(vocab_size: int = 300, max_length: int = 64) -> BertTokenizerFast:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(sentences(), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    return BertTokenizerFast(tokenizer_object=tok, model_max_length=max_length)


def bpe_tokenizer(special: list[str], template: str, **names: str) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer; `special` come first in the vocabulary; `template` adds them to inputs."""
    tok = Tokenizer(models.BPE(unk_token=names.get("unk_token")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(sentences(), trainer)
    ids = [(t, tok.token_to_id(t)) for t in special]
    tok.post_processor = processors.TemplateProcessing(
        single=template, pair=template.replace("$A", "$A $B"), special_tokens=[p for p in ids if p[0] in template]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=128, **names)


def _save(model, tokenizer, path: str) -> str:
    torch.manual_seed(0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_classifier(path: str, labels=("NEGATIVE", "POSITIVE"), max_positions: int = 64, hidden: int = 32) -> str:
    tokenizer = bert_tokenizer(max_length=max_positions)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=max_positions,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    return _save(BertForSequenceClassification(config), tokenizer, path)


def make_encoder(path: str, max_positions: int = 512, hidden: int = 32, layers: int = 2) -> str:
    """A bare BERT encoder without a head, as sentence-transformers checkpoints ship (to fine-tune)."""
    tokenizer = bert_tokenizer(max_length=max_positions)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=max_positions,
        architectures=["BertModel"],
    )
    return _save(BertModel(config), tokenizer, path)


def make_qa(path: str, answer_word: str = "zebra") -> str:
    """A BERT QA model with no layers, whose start and end logits are high on `answer_word` alone.

    Embeddings are zero except that word's, so after LayerNorm only its tokens carry a signal that the
    QA head turns into a large start/end logit: the right answer is known, wherever the word stands.
    """
    tokenizer = bert_tokenizer()
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=0,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        architectures=["BertForQuestionAnswering"],
    )
    model = BertForQuestionAnswering(config)
    with torch.no_grad():
        emb = model.bert.embeddings
        emb.word_embeddings.weight.zero_()
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        word_ids = tokenizer(answer_word, add_special_tokens=False)["input_ids"]
        assert len(word_ids) == 1, f"{answer_word!r} must be one token in the tiny vocabulary"
        emb.word_embeddings.weight[word_ids[0], 0] = 1.0
        emb.word_embeddings.weight[word_ids[0], 1] = -1.0
        model.qa_outputs.weight.zero_()
        model.qa_outputs.bias.zero_()
        model.qa_outputs.weight[:, 0] = 5.0
    return _save(model, tokenizer, path)


def make_t5(path: str, wordpiece: bool = False, eos_token_id: int | None = -1) -> str:
    """A tiny T5. `wordpiece=True` gives it a BERT WordPiece tokenizer, which names no end token: the config's
    `eos_token_id` (by default [SEP]; None: no end token anywhere) is the only place that says it."""
    if wordpiece:
        tokenizer = bert_tokenizer(max_length=128)
        ids = dict(
            decoder_start_token_id=tokenizer.pad_token_id,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.sep_token_id if eos_token_id == -1 else eos_token_id,
        )
    else:
        tokenizer = bpe_tokenizer(
            ["<pad>", "</s>", "<unk>"], "$A </s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
        )
        ids = dict(decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        **ids,
        n_positions=128,
        task_specific_params={
            "summarization": {"prefix": "summarize: "},
            "translation_en_to_de": {"prefix": "translate English to German: "},
            "translation_en_to_fr": {"prefix": "translate English to French: "},
        },
    )
    return _save(T5ForConditionalGeneration(config), tokenizer, path)


def make_bart(path: str, bert_tokens: bool = False) -> str:
    """A tiny BART; `bert_tokens=True` gives it a BERT tokenizer (which returns token_type_ids), as Chinese BART
    checkpoints ship."""
    if bert_tokens:
        tokenizer = bert_tokenizer(max_length=128)
        ids = dict(
            bos_token_id=tokenizer.cls_token_id,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.sep_token_id,
            decoder_start_token_id=tokenizer.sep_token_id,
        )
    else:
        tokenizer = bpe_tokenizer(
            ["<s>", "<pad>", "</s>", "<unk>"],
            "<s> $A </s>",
            bos_token="<s>",
            pad_token="<pad>",
            eos_token="</s>",
            unk_token="<unk>",
        )
        ids = dict(bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2)
    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        **ids,
        forced_bos_token_id=None,
        architectures=["BartForConditionalGeneration"],
    )
    return _save(BartForConditionalGeneration(config), tokenizer, path)


def make_chat_llama(path: str) -> str:
    tokenizer = bpe_tokenizer(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        "$A",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token="<|im_start|>",
    )
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        architectures=["LlamaForCausalLM"],
    )
    return _save(LlamaForCausalLM(config), tokenizer, path)


def write_meta(path: str, **meta) -> None:
    with open(os.path.join(path, "hfapps.json"), "w", encoding="utf-8") as handle:
        json.dump(meta, handle)


def write_sentiment_data(folder: str, n: int = 64) -> dict[str, str]:
    """A tiny labelled CSV (train) and JSONL (validation): positive words -> POSITIVE."""
    import csv

    rng = random.Random(1)
    good, bad = ["great", "wonderful", "brilliant", "fast"], ["terrible", "boring", "awful", "slow"]
    rows = []
    for i in range(n):
        label = i % 2
        rows.append(
            {
                "text": f"{rng.choice(SUBJECTS)} was {rng.choice(good if label else bad)} {rng.choice(TAILS)}.",
                "label": ["NEGATIVE", "POSITIVE"][label],
            }
        )
    os.makedirs(folder, exist_ok=True)
    train, validation = os.path.join(folder, "train.csv"), os.path.join(folder, "validation.jsonl")
    with open(train, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows[: n * 3 // 4])
    with open(validation, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows[n * 3 // 4 :])
    return {"train": train, "validation": validation}


def write_qa_data(folder: str, n: int = 24) -> dict[str, str]:
    """SQuAD-format JSON with answers at verified offsets."""
    rng = random.Random(2)
    paragraphs = []
    for i in range(n):
        context = " ".join(sentences(3, seed=i)) + f" The answer is {rng.choice(SUBJECTS)}."
        text = context.split("The answer is ")[1].rstrip(".")
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": str(i),
                        "question": "what is the answer?",
                        "answers": [{"text": text, "answer_start": context.index(text)}],
                    }
                ],
            }
        )
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for split, part in (("train", paragraphs[: n * 3 // 4]), ("validation", paragraphs[n * 3 // 4 :])):
        paths[split] = os.path.join(folder, f"{split}.json")
        with open(paths[split], "w", encoding="utf-8") as handle:
            json.dump({"version": "1.1", "data": [{"title": "tiny", "paragraphs": part}]}, handle)
    return paths


def write_pairs_data(folder: str, source: str, target: str, n: int = 32) -> dict[str, str]:
    """JSONL pairs: the target is the source's first three words (a learnable toy task)."""
    os.makedirs(folder, exist_ok=True)
    rows = [{source: s, target: " ".join(s.split()[:3])} for s in sentences(n, seed=7)]
    paths = {}
    for split, part in (("train", rows[: n * 3 // 4]), ("validation", rows[n * 3 // 4 :])):
        paths[split] = os.path.join(folder, f"{split}.jsonl")
        with open(paths[split], "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in part)
    return paths


def wide_channels(path: str) -> tuple[torch.nn.Module, object]:
    """The tiny classifier with three channels of every LayerNorm 30x wider, as fine-tuned encoders have them, and
    weights 5x larger than at initialization, so that the products' errors reach the logits as in a trained model."""
    model = BertForSequenceClassification.from_pretrained(path).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight[[1, 7, 20]] *= 30
            elif isinstance(module, torch.nn.Linear):
                module.weight *= 5
    return model, BertTokenizerFast.from_pretrained(path)


def logits(model, tokenizer, texts):
    with torch.no_grad():
        return model(**tokenizer(texts, return_tensors="pt", padding=True)).logits
