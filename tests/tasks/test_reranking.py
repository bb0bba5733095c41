"""The reranking task: scores equal sentence-transformers' CrossEncoder, input shapes and bad input, the rerank
helper's order, and `Index.search(..., rerank=...)`."""

from __future__ import annotations

import numpy as np
import pytest
from retrieval import tiny_retrieval

import hfapps
from hfapps.api import load
from hfapps.retrieval.helpers import rerank
from hfapps.retrieval.index import Index

from tiny_models import sentences

QUERY = "who loved the film"
DOCS = sentences(30, seed=5)


@pytest.fixture(scope="session")
def retrieval_models(tmp_path_factory):
    return tiny_retrieval.models(tmp_path_factory)


@pytest.fixture
def documents():
    return tiny_retrieval.documents()


def test_scores_equal_cross_encoder_predict(retrieval_models):
    from sentence_transformers import CrossEncoder

    ours = load("reranking", retrieval_models["cross_encoder"])([(QUERY, d) for d in DOCS], batch_size=4)
    theirs = CrossEncoder(retrieval_models["cross_encoder"], device="cpu").predict([(QUERY, d) for d in DOCS])
    assert np.allclose(ours, theirs, atol=1e-5)
    assert all(0.0 < s < 1.0 for s in ours)  # a sigmoid of the one logit


def test_rerank_helper_orders_by_score(retrieval_models):
    model = retrieval_models["cross_encoder"]
    ranked = rerank(QUERY, DOCS, model=model)
    scores = load("reranking", model)([{"query": QUERY, "document": d} for d in DOCS])
    assert [r["index"] for r in ranked] == list(np.argsort(-np.asarray(scores), kind="stable"))
    assert [r["text"] for r in ranked[:3]] == [DOCS[r["index"]] for r in ranked[:3]]
    assert len(rerank(QUERY, DOCS, model=model, top_k=3)) == 3
    single = load("reranking", model)({"query": QUERY, "document": DOCS[0]})
    assert single == pytest.approx(scores[0], abs=1e-6)


def test_bad_input(retrieval_models):
    model = retrieval_models["cross_encoder"]
    with pytest.raises(hfapps.InputError, match="query"):
        rerank(["a", "b"], DOCS, model=model)  # type: ignore[arg-type]
    with pytest.raises(hfapps.InputError, match="index 1"):
        load("reranking", model)([("q", "d"), ("q", "")])
    with pytest.raises(hfapps.InputError, match="pair"):
        load("reranking", model)(["just a text"])
    with pytest.raises(hfapps.TaskMismatchError, match="reranker.yaml"):
        load("reranking", retrieval_models["encoder"])


def test_index_search_reranks_the_first_hits(tmp_path, retrieval_models, documents):
    reranker = load("reranking", retrieval_models["cross_encoder"])
    with Index(tmp_path / "ix", model=retrieval_models["embedder"]) as index:
        index.add(documents)
        plain = index.search("capital city", k=6)
        reranked = index.search("capital city", k=3, rerank=reranker, rerank_depth=6)
    scores = reranker([("capital city", hit["text"]) for hit in plain])
    expected = [plain[i]["id"] for i in np.argsort(-np.asarray(scores), kind="stable")[:3]]
    assert [hit["id"] for hit in reranked] == expected
    assert [hit["score"] for hit in reranked] == sorted((hit["score"] for hit in reranked), reverse=True)
