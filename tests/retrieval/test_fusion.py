"""Reciprocal rank fusion: the formula, the weights, ties and bad arguments."""

import pytest

from hfapps.errors import InputError
from hfapps.retrieval.fusion import reciprocal_rank_fusion


def test_scores_are_weighted_reciprocal_ranks():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], [1.0, 2.0], k=10))
    assert fused["a"] == pytest.approx(1 / 11 + 2 / 12)
    assert fused["b"] == pytest.approx(1 / 12)
    assert fused["c"] == pytest.approx(1 / 13 + 2 / 11)


def test_order_weights_and_ties():
    assert [key for key, _ in reciprocal_rank_fusion([["a", "b"], ["b", "a"]])] == ["a", "b"]  # a tie: first seen
    assert [key for key, _ in reciprocal_rank_fusion([["a", "b"], ["b", "a"]], [1, 3])] == ["b", "a"]
    assert [key for key, _ in reciprocal_rank_fusion([["a", "b"], ["b"]], [0, 1])][0] == "b"  # weight 0: no say
    assert dict(reciprocal_rank_fusion([["a", "a", "b"]]))["a"] == pytest.approx(1 / 61)  # a repeat counts once


def test_bad_arguments():
    with pytest.raises(InputError, match="one weight per ranking"):
        reciprocal_rank_fusion([["a"], ["b"]], [1.0])
    with pytest.raises(InputError, match="at least 0"):
        reciprocal_rank_fusion([["a"]], [-1.0])
    with pytest.raises(InputError, match="one above 0"):
        reciprocal_rank_fusion([["a"]], [0.0])
