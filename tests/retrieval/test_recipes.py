"""The embedding and reranker recipes through the one runner (`hfapps.train`) on tiny models and hfapps' sample
questions: a few steps, the usual run folder, and outputs the helpers load."""

from __future__ import annotations

import json
import os

import numpy as np

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


def test_reranker_recipe_mines_bm25_negatives(tmp_path, retrieval_models):
    out = str(tmp_path / "reranker")
    metrics = train(_recipe("reranker", retrieval_models["embedder"], out))
    assert "eval_validation_mrr@10" in metrics["eval"]
    ranked = rerank("a question", ["one passage", "another passage"], model=out)
    assert sorted(r["index"] for r in ranked) == [0, 1]
    questions = ["zebra stripes", "capital of France"]
    passages = ["Paris is the capital of France.", "The zebra has stripes.", "Cats sleep."]
    assert [row[0] for row in reranking.mine_bm25(questions, passages)] == [1, 0]
