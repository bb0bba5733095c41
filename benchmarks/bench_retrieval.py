"""Retrieval quality on SQuAD through hfapps itself (`hfapps.Index`: Milvus Lite, dense HNSW, Milvus BM25, fusion).

Every paragraph of `../shared/data/squad/dev-v1.1-first-half.json` is the corpus (1,048), each of its 5,696
questions has its own paragraph as the one relevant document. Reported: recall@1/10, MRR@10, nDCG@10 of dense
(all-MiniLM-L6-v2, cosine), BM25, hybrid (reciprocal rank fusion, k 60) with equal weights, and hybrid with the
weights chosen on validation questions: those of the first 600 paragraphs of the SQuAD train subset (another
corpus, other questions: never the test questions). `--embedder` and `--reranker` add a fine-tuned embedder and a
cross-encoder (`hfapps train recipes/embedding.yaml`, `recipes/reranker.yaml`).

    python benchmarks/bench_retrieval.py
    python benchmarks/bench_retrieval.py --questions 500          # a quick check that it runs
    python benchmarks/bench_retrieval.py --embedder runs/embedding --reranker runs/reranker

Baseline (the issue's table, sentence-transformers and bm25s directly): dense 0.624 / 0.925 / 0.730, BM25 0.736 /
0.938 / 0.810, fusion 0.724 / 0.964 / 0.814 (recall@1 / recall@10 / MRR@10).
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import evaluate  # noqa: E402

import hfapps.metrics  # noqa: E402
from hfapps.retrieval.fusion import reciprocal_rank_fusion  # noqa: E402
from hfapps.retrieval.index import Index  # noqa: E402

from common import DATA, machine, need_data  # noqa: E402

METRIC = os.path.join(os.path.dirname(hfapps.metrics.__file__), "retrieval")
WEIGHTS = [(1.0, 0.0), (0.25, 1.0), (0.5, 1.0), (0.75, 1.0), (1.0, 1.0), (1.0, 0.75), (1.0, 0.5), (0.0, 1.0)]


def squad(file: str, paragraphs: int | None = None) -> tuple[list[dict], list[str], list[str]]:
    """(documents, questions, the id of each question's paragraph)."""
    with open(os.path.join(DATA, "squad", file), encoding="utf-8") as f:
        articles = json.load(f)["data"]
    documents, questions, relevant = [], [], []
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article["paragraphs"]):
            key = f"{a}-{p}"
            documents.append({"id": key, "text": paragraph["context"], "title": article["title"]})
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                relevant.append(key)
            if paragraphs is not None and len(documents) == paragraphs:
                return documents, questions, relevant
    return documents, questions, relevant


def run(index: Index, questions: list[str], **search) -> tuple[list[list[str]], float]:
    start, ranked = time.perf_counter(), []
    for i in range(0, len(questions), 256):
        hits = index.search(questions[i : i + 256], k=100, **search)
        ranked += [[hit["id"] for hit in found] for found in hits]
    return ranked, time.perf_counter() - start


def fused(dense: list[list[str]], bm25: list[list[str]], weights: tuple[float, float]) -> list[list[str]]:
    """What `Index.search(mode="hybrid", weights=...)` returns (it fuses the same two top-100 lists), from lists
    already retrieved: the weights are tried without searching again."""
    return [[key for key, _ in reciprocal_rank_fusion([d, b], weights)][:100] for d, b in zip(dense, bm25)]


def scores(ranked: list[list[str]], relevant: list[str]) -> dict:
    return evaluate.load(METRIC).compute(predictions=ranked, references=[[r] for r in relevant], ks=[1, 10, 100])


def row(name: str, s: dict, seconds: float, n: int) -> None:
    print(
        f"| {name} | {s['recall@1']:.3f} | {s['recall@10']:.3f} | {s['recall@100']:.3f} | {s['mrr@10']:.3f} "
        f"| {s['ndcg@10']:.3f} | {1000 * seconds / n:.1f} |"
    )


def build(folder: str, documents: list[dict], model: str | None) -> tuple[Index, float]:
    start = time.perf_counter()
    index = Index(folder, model=model)
    index.add(documents, batch_size=128)
    return index, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=None, help="score the first N test questions (default: all)")
    parser.add_argument("--embedder", default=None, help="another embedding model (a fine-tuned one) to compare")
    parser.add_argument("--reranker", default=None, help="a cross-encoder reranking the first 50 hybrid hits")
    parser.add_argument("--validation_paragraphs", type=int, default=600)
    args = parser.parse_args()
    need_data()
    documents, questions, relevant = squad("dev-v1.1-first-half.json")
    if args.questions:
        questions, relevant = questions[: args.questions], relevant[: args.questions]
    val_docs, val_questions, val_relevant = squad("train-v1.1-subset.json", args.validation_paragraphs)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        validation, _ = build(os.path.join(tmp, "validation"), val_docs, None)
        val_dense, _ = run(validation, val_questions, mode="dense")
        val_bm25, _ = run(validation, val_questions, mode="bm25")
        tried = {weights: scores(fused(val_dense, val_bm25, weights), val_relevant) for weights in WEIGHTS}
        validation.close()
        chosen = max(tried, key=lambda w: tried[w]["mrr@10"])
        print(
            f"validation: {len(val_questions)} questions on {len(val_docs)} train-subset paragraphs; MRR@10 by "
            "(dense, BM25) weights: " + ", ".join(f"{w}: {s['mrr@10']:.3f}" for w, s in tried.items())
        )
        print(f"chosen weights: dense {chosen[0]}, BM25 {chosen[1]}")
        index, built = build(os.path.join(tmp, "dev"), documents, None)
        print(f"test: {len(questions)} questions, {len(documents)} paragraphs; index built in {built:.0f} s")
        print("| retriever | recall@1 | recall@10 | recall@100 | MRR@10 | nDCG@10 | ms/question |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        dense, dense_s = run(index, questions, mode="dense")
        row("dense, all-MiniLM-L6-v2", scores(dense, relevant), dense_s, len(questions))
        bm25, bm25_s = run(index, questions, mode="bm25")
        row("BM25 (Milvus, English stop words)", scores(bm25, relevant), bm25_s, len(questions))
        hybrid, hybrid_s = run(index, questions, mode="hybrid")
        row("hybrid, RRF k 60, equal weights", scores(hybrid, relevant), hybrid_s, len(questions))
        assert hybrid == fused(dense, bm25, (1.0, 1.0))  # the offline fusion below is the index's own
        row(
            f"hybrid, weights {chosen} (validation)",
            scores(fused(dense, bm25, chosen), relevant),
            hybrid_s,
            len(questions),
        )
        if args.reranker:
            ranked, seconds = run(index, questions, mode="hybrid", weights=chosen, rerank=args.reranker)
            row(f"hybrid {chosen} + reranker (first 50)", scores(ranked, relevant), seconds, len(questions))
        index.close()
        if args.embedder:
            tuned, _ = build(os.path.join(tmp, "tuned"), documents, args.embedder)
            ranked, seconds = run(tuned, questions, mode="dense")
            row("dense, fine-tuned embedder", scores(ranked, relevant), seconds, len(questions))
            ranked, seconds = run(tuned, questions, mode="hybrid", weights=chosen)
            row(f"hybrid {chosen}, fine-tuned embedder", scores(ranked, relevant), seconds, len(questions))
            if args.reranker:
                ranked, seconds = run(tuned, questions, mode="hybrid", weights=chosen, rerank=args.reranker)
                row("hybrid, fine-tuned embedder + reranker", scores(ranked, relevant), seconds, len(questions))
            tuned.close()


if __name__ == "__main__":
    main()
