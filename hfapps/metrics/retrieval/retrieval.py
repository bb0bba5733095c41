"""Retrieval quality: recall@k, MRR@10 and nDCG@10 of ranked document ids against each query's relevant ids."""

import math

import datasets
import evaluate

_DESCRIPTION = (
    "For each query, `predictions` is the ranked list of retrieved document ids (best first) and `references` the "
    "ids relevant to it. recall@k: the share of a query's relevant documents among its first k, averaged over "
    "queries (with one relevant document per query, as in SQuAD, the share of queries that find it in the first k). "
    "MRR@10: the mean of 1/rank of the first relevant document in the first 10 (0 if none). nDCG@10: binary-gain "
    "discounted cumulative gain of the first 10, divided by the best possible."
)
_KWARGS = (
    "predictions: list of lists of str ids, best first; references: list of lists of str ids; ks: the k of recall "
    "(default [1, 5, 10, 100]). Returns {'recall@1', ..., 'mrr@10', 'ndcg@10', 'queries'}."
)


class Retrieval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references, ks=(1, 5, 10, 100)):
        if not references:
            raise ValueError("retrieval metrics need at least one query")
        if any(not relevant for relevant in references):
            raise ValueError("every query needs at least one relevant document id in references")
        recall = dict.fromkeys(ks, 0.0)
        mrr = ndcg = 0.0
        for ranked, relevant in zip(predictions, references):
            relevant = set(relevant)
            ranked = list(dict.fromkeys(ranked))  # a repeated id counts once, at its best rank
            for k in ks:
                recall[k] += len(relevant & set(ranked[:k])) / len(relevant)
            first = next((rank for rank, key in enumerate(ranked[:10], start=1) if key in relevant), None)
            mrr += 1.0 / first if first else 0.0
            gains = sum(1.0 / math.log2(rank + 1) for rank, key in enumerate(ranked[:10], start=1) if key in relevant)
            best = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), 10) + 1))
            ndcg += gains / best
        n = len(references)
        return {
            **{f"recall@{k}": recall[k] / n for k in ks},
            "mrr@10": mrr / n,
            "ndcg@10": ndcg / n,
            "queries": n,
        }
