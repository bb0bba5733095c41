"""The offline retrieval metrics (hfapps/metrics/retrieval): recall@k, MRR@10, nDCG@10 computed by hand."""

import math
import os

import evaluate
import pytest

import hfapps.metrics

METRIC = os.path.join(os.path.dirname(hfapps.metrics.__file__), "retrieval")


def test_values_by_hand():
    metric = evaluate.load(METRIC)
    scores = metric.compute(
        predictions=[["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]],
        references=[["a"], ["z"], ["nowhere"]],
        ks=[1, 3],
    )
    assert scores["recall@1"] == pytest.approx(1 / 3)
    assert scores["recall@3"] == pytest.approx(2 / 3)
    assert scores["mrr@10"] == pytest.approx((1 + 1 / 3) / 3)
    assert scores["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    two = metric.compute(predictions=[["b", "a", "a"]], references=[["a", "b"]], ks=[1])
    assert two["recall@1"] == pytest.approx(0.5) and two["ndcg@10"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one relevant"):
        metric.compute(predictions=[["a"]], references=[[]])
