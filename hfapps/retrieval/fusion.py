"""Reciprocal rank fusion: one ranking from several, each list weighted, scores ignored.

A document's fused score is the sum over the lists that hold it of `weight / (k + rank)` (rank from 1), as in
Cormack, Clarke and Buettcher (2009), with a weight per list so that dense and BM25 can count differently: the
weights are chosen on validation questions (benchmarks/bench_retrieval.py), never on the test questions. Ties keep
the order of first appearance, so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from ..errors import InputError

#: The constant of reciprocal rank fusion: 60 in the paper and in Milvus's RRFRanker.
RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Hashable]], weights: Sequence[float] | None = None, *, k: float = RRF_K
) -> list[tuple[Hashable, float]]:
    """`(id, fused score)` pairs, best first, from `rankings` (each a list of ids, best first)."""
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise InputError(f"Fusion takes one weight per ranking: {len(rankings)} rankings, {len(weights)} weights.")
    if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
        raise InputError(f"Fusion weights must be at least 0, and one above 0; got {weights}.")
    if k < 0:
        raise InputError(f"The fusion constant k must be at least 0, got {k}.")
    scores: dict[Hashable, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, key in enumerate(dict.fromkeys(ranking), start=1):  # a repeated id counts at its best rank
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])
