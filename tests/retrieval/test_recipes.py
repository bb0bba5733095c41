"""The embedding and reranker recipes through the one runner (`hfapps.train`) on tiny models and hfapps' sample
questions: a few steps, the usual run folder, and outputs the helpers load."""

from __future__ import annotations

import json
import os

import numpy as np
from datasets import Dataset, DatasetDict

from hfapps.retrieval.helpers import embed, rerank
from hfapps.tasks import embedding, reranking  # noqa: F401  (registers the tasks and their training)
from hfapps.training.recipe import read_recipe, recipe_path
from hfapps.training.runner import train

FEW_STEPS = {
    "dataset_name": "sample",
    "max_steps": 2,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 8,
    "max_eval_samples": 8,
    "max_seq_length": 48,
    "save_strategy": "steps",
    "save_steps": 1,
    "eval_strategy": "no",
    "logging_steps": 1,
    "report_to": "none",
}


def _recipe(name: str, model: str, out: str) -> dict:
    shipped = read_recipe(recipe_path(name))
    recipe = {k: v for k, v in shipped.items() if k not in ("train_file", "validation_file", "eval_steps")}
    return {**recipe, **FEW_STEPS, "model_name_or_path": model, "output_dir": out}


def test_embedding_recipe(tmp_path, retrieval_models):
    out = str(tmp_path / "embedding")
    metrics = train(_recipe("embedding", retrieval_models["embedder"], out))
    assert "eval_validation_cosine_mrr@10" in metrics["eval"]
    for name in ("modules.json", "1_Pooling", "metrics.json", "README.md", "recipe.yaml", "checkpoint-2"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "hfapps.json")) as f:
        assert json.load(f)["task"] == "embedding"
    before, after = embed("a question", model=retrieval_models["embedder"]), embed("a question", model=out)
    assert after.shape == (32,) and not np.allclose(before, after)  # trained, and loads as an embedder


def test_embedding_recipe_with_bm25_hard_negatives(tmp_path, retrieval_models):
    spec = embedding.EmbeddingTraining.__new__(embedding.EmbeddingTraining)
    spec.args = type("Args", (), {"question_column": "question", "context_column": "context", "hard_negatives": 2})()
    questions = ["zebra stripes", "capital of France", "sleepy cats"]
    passages = ["The zebra has stripes.", "Paris is the capital of France.", "Cats sleep all day."]
    split = Dataset.from_dict({"question": questions, "context": passages})
    prepared = spec.prepare(DatasetDict({"train": split}))["train"]
    assert prepared["negative_1"][0] != passages[0] and prepared["negative_2"][0] != passages[0]
    assert {prepared["negative_1"][1], prepared["negative_2"][1]} == {passages[0], passages[2]}
    assert spec.tokenize(prepared, None, None).column_names == ["question", "context", "negative_1", "negative_2"]

    out = str(tmp_path / "embedding")
    metrics = train({**_recipe("embedding", retrieval_models["embedder"], out), "hard_negatives": 1})
    assert "eval_validation_cosine_mrr@10" in metrics["eval"]
    assert not np.allclose(embed("a question", model=retrieval_models["embedder"]), embed("a question", model=out))


def test_reranker_recipe_mines_bm25_negatives(tmp_path, retrieval_models):
    out = str(tmp_path / "reranker")
    metrics = train(_recipe("reranker", retrieval_models["embedder"], out))
    assert "eval_validation_mrr@10" in metrics["eval"]
    ranked = rerank("a question", ["one passage", "another passage"], model=out)
    assert sorted(r["index"] for r in ranked) == [0, 1]
    questions = ["zebra stripes", "capital of France"]
    passages = ["Paris is the capital of France.", "The zebra has stripes.", "Cats sleep."]
    assert [row[0] for row in reranking.mine_bm25(questions, passages)] == [1, 0]


def test_reranker_evaluation_does_not_reward_a_head_that_scores_every_pair_alike(retrieval_models):
    """A cross-encoder whose head gives every pair the same score has learnt nothing: the evaluator must score it
    near chance, not a perfect MRR from candidates listed positive first."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    questions = [f"question number {i} about topic {i}" for i in range(12)]
    passages = [f"passage {i} says something about topic {i} and more" for i in range(12)]
    prepared = reranking.RerankingTraining.__new__(reranking.RerankingTraining)
    prepared.args = type("Args", (), {"question_column": "question", "context_column": "context"})()
    rows = prepared.prepare({"validation": _Split({"question": questions, "context": passages})})["validation"]
    samples = reranking.evaluation_samples(rows)
    assert len(samples) == 12 and all(len(s["documents"]) == 4 and len(s["positive"]) == 1 for s in samples)
    assert {s["documents"].index(s["positive"][0]) for s in samples} != {0}  # not always listed first

    model = CrossEncoder(retrieval_models["cross_encoder"], num_labels=1, device="cpu")
    with torch.no_grad():
        head = model.model.classifier
        head.weight.zero_()
        head.bias.fill_(0.5)
    scores = CrossEncoderRerankingEvaluator(samples=samples, name="v", write_csv=False)(model)
    assert scores["v_mrr@10"] < 0.8  # chance among 4 is 0.52; positive first would be 1.0


class _Split(dict):
    """The little of a datasets split that `prepare` reads: named columns and their list."""

    @property
    def column_names(self) -> list[str]:
        return list(self)
