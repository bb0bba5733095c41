"""Tiny models and a real Milvus server for the retrieval tests (tests/retrieval and tests/tasks use them).

A tiny sentence-transformers folder (BERT, mean pooling, Normalize), a tiny
cross-encoder (a one-label sequence classifier), a few documents, and a real `milvus-lite server` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import torch
from transformers import BertConfig, BertForSequenceClassification

import tiny_models


def make_sentence_transformer(path: str, *, pooling: str = "mean", normalize: bool = True, prompts=None) -> str:
    """A tiny encoder saved as sentence-transformers saves one: modules.json, 1_Pooling, Normalize, prompts."""
    tiny_models.make_encoder(path, max_positions=64)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    with open(os.path.join(path, "modules.json"), "w") as f:
        json.dump(modules, f)
    os.makedirs(os.path.join(path, "1_Pooling"), exist_ok=True)
    modes = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens", "max": "pooling_mode_max_tokens"}
    with open(os.path.join(path, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 32, **{key: key == modes[pooling] for key in modes.values()}}, f)
    with open(os.path.join(path, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 48, "do_lower_case": False}, f)
    with open(os.path.join(path, "config_sentence_transformers.json"), "w") as f:
        json.dump({"prompts": prompts or {}, "default_prompt_name": None, "similarity_fn_name": "cosine"}, f)
    return path


def make_cross_encoder(path: str, *, initializer_range: float = 0.02, head_scale: float = 1.0) -> str:
    """A one-logit BERT cross-encoder. Wider weights (`initializer_range`, `head_scale`) spread its scores apart."""
    tokenizer = tiny_models.bert_tokenizer(max_length=64)
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=1,
        initializer_range=initializer_range,
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.mul_(head_scale)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


_BUILT: dict[str, dict[str, str]] = {}


def models(tmp_path_factory) -> dict[str, str]:
    """The tiny models' folders, built once per session (the `retrieval_models` fixtures of both test folders)."""
    if "models" in _BUILT:
        return _BUILT["models"]
    root = tmp_path_factory.mktemp("retrieval_models")
    _BUILT["models"] = {
        "embedder": make_sentence_transformer(str(root / "st")),
        "embedder_cls": make_sentence_transformer(str(root / "st_cls"), pooling="cls", normalize=False),
        "embedder_prompts": make_sentence_transformer(
            str(root / "st_prompts"), prompts={"query": "query: ", "document": "passage: "}
        ),
        "other_embedder": make_sentence_transformer(str(root / "st_other"), pooling="max"),
        "encoder": tiny_models.make_encoder(str(root / "plain"), max_positions=64),
        "cross_encoder": make_cross_encoder(str(root / "ce")),
        "qa": tiny_models.make_qa(str(root / "qa")),
    }
    return _BUILT["models"]


DOCUMENTS = [
    {"id": "paris", "text": "Paris is the capital of France and sits on the Seine.", "lang": "en", "year": 2020},
    {"id": "berlin", "text": "Berlin is the capital of Germany.", "lang": "en", "year": 2021},
    {"id": "tokyo", "text": "Tokyo is a large city in Japan with many trains.", "lang": "en", "year": 2022},
    {"id": "zebra", "text": "The zebra lives in Africa and has black and white stripes.", "lang": "en", "year": 2019},
    {"id": "hund", "text": "Der Hund schläft im Garten.", "lang": "de", "year": 2020},
    {"id": "katze", "text": "Die Katze sitzt auf der Matte.", "lang": "de", "year": 2023},
]


def documents() -> list[dict]:
    return [dict(d) for d in DOCUMENTS]


def free_port() -> int:
    from hfapps.cli.sharding import free_port as port

    return port()


class MilvusServer:
    """A real `milvus-lite server` process on a free loopback port (hfapps' server mode talks to it by URL)."""

    def __init__(self, data_dir: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        script = os.path.join(os.path.dirname(sys.executable), "milvus-lite")
        self.process = subprocess.Popen(
            [script, "server", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", data_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.time() + 60
        import socket

        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"milvus-lite server exited: {self.process.stdout.read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("milvus-lite server did not listen within 60 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
