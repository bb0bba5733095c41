"""Retrieval quality on SQuAD through hfapps itself (`hfapps.Index`: Milvus Lite, dense HNSW, Milvus BM25, fusion).

Every paragraph of `../shared/data/squad/dev-v1.1-first-half.json` is the corpus (1,048), each of its 5,696
questions has its own paragraph as the one relevant document. Reported: recall@1/10/100, MRR@10, nDCG@10 and the
time per question of dense (all-MiniLM-L6-v2, cosine), BM25, hybrid (reciprocal rank fusion, k 60) with equal
weights, and hybrid with the weights chosen on validation questions: those of the last 400 paragraphs of the SQuAD
train subset (another corpus, other questions: never the test questions, and not the train-subset questions the
recipes below train on, which come from its first articles). `--embedder` adds a fine-tuned embedder (dense, and
hybrid with weights chosen for it on the same validation questions); `--reranker` adds a cross-encoder rereading the
first `--rerank_depth` hits of the best hybrid (the fine-tuned embedder's when given). Reranking costs a model pass
per (question, passage) pair, so its row is measured on a fixed random sample of `--rerank_questions` test
questions, next to the same pipeline without it. `--skip_base` leaves out the base embedder's rows.

    python benchmarks/bench_retrieval.py
    python benchmarks/bench_retrieval.py --questions 200 --validation_paragraphs 50      # a quick check that it runs
    python benchmarks/bench_retrieval.py --embedder runs/embedding --reranker runs/reranker
    python benchmarks/bench_retrieval.py --embedder runs/embedding --reranker runs/reranker --skip_base

Baseline (the issue's table, sentence-transformers and bm25s directly): dense 0.624 / 0.925 / 0.730, BM25 0.736 /
0.938 / 0.810, fusion 0.724 / 0.964 / 0.814 (recall@1 / recall@10 / MRR@10).
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import evaluate  # noqa: E402

import hfapps.metrics  # noqa: E402
from hfapps.api import load  # noqa: E402
from hfapps.retrieval.fusion import reciprocal_rank_fusion  # noqa: E402
from hfapps.retrieval.index import Index  # noqa: E402

from common import DATA, machine, need_data  # noqa: E402

METRIC = os.path.join(os.path.dirname(hfapps.metrics.__file__), "retrieval")
WEIGHTS = [(1.0, 0.0), (0.25, 1.0), (0.5, 1.0), (0.75, 1.0), (1.0, 1.0), (1.0, 0.75), (1.0, 0.5), (0.0, 1.0)]
TEST_FILE, VALIDATION_FILE = "dev-v1.1-first-half.json", "train-v1.1-subset.json"


def paragraphs(file: str) -> list[dict]:
    """Every paragraph of a SQuAD file: `{"id", "text", "title", "qas"}` (the id is "article-paragraph")."""
    with open(os.path.join(DATA, "squad", file), encoding="utf-8") as f:
        articles = json.load(f)["data"]
    return [
        {"id": f"{a}-{p}", "text": paragraph["context"], "title": article["title"], "qas": paragraph["qas"]}
        for a, article in enumerate(articles)
        for p, paragraph in enumerate(article["paragraphs"])
    ]


def squad(file: str, paragraphs_: int | None = None, last: bool = False) -> tuple[list[dict], list[str], list[str]]:
    """(documents, questions, the id of each question's paragraph): every paragraph, or the first (`last`: the
    last) `paragraphs_` of them."""
    found = paragraphs(file)
    if paragraphs_ is not None:
        found = found[-paragraphs_:] if last else found[:paragraphs_]
    documents = [{"id": p["id"], "text": p["text"], "title": p["title"]} for p in found]
    questions = [qa["question"] for p in found for qa in p["qas"]]
    relevant = [p["id"] for p in found for _ in p["qas"]]
    return documents, questions, relevant


def run(index: Index, questions: list[str], k: int = 100, **search) -> tuple[list[list[str]], float]:
    start, ranked = time.perf_counter(), []
    for i in range(0, len(questions), 256):
        hits = index.search(questions[i : i + 256], k=k, **search)
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
        f"| {s['ndcg@10']:.3f} | {1000 * seconds / n:.1f} |",
        flush=True,
    )


def header(title: str) -> None:
    print(f"\n{title}\n\n| retriever | recall@1 | recall@10 | recall@100 | MRR@10 | nDCG@10 | ms/question |")
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)


def build(folder: str, documents: list[dict], model: str | None) -> tuple[Index, float]:
    start = time.perf_counter()
    index = Index(folder, model=model)
    index.add(documents, batch_size=128)
    return index, time.perf_counter() - start


def choose(folder: str, documents: list[dict], questions: list[str], relevant: list[str], model: str | None) -> tuple:
    """The (dense, BM25) fusion weights with the best MRR@10 on the validation questions, for this embedder."""
    validation, _ = build(folder, documents, model)
    dense, _ = run(validation, questions, mode="dense")
    bm25, _ = run(validation, questions, mode="bm25")
    validation.close()
    tried = {weights: scores(fused(dense, bm25, weights), relevant) for weights in WEIGHTS}
    chosen = max(tried, key=lambda w: tried[w]["mrr@10"])
    print(
        f"validation ({model or 'base embedder'}): MRR@10 by (dense, BM25) weights: "
        + ", ".join(f"{w}: {s['mrr@10']:.3f}" for w, s in tried.items())
        + f"; chosen {chosen}",
        flush=True,
    )
    return chosen


def reranked(index: Index, questions: list[str], reranker, depth: int, **search) -> tuple[list[list[str]], float]:
    """The first `depth` hits reread by the cross-encoder (`Index.search(rerank=...)`), then the rest unchanged."""
    first, seconds = run(index, questions, k=depth, rerank=reranker, rerank_depth=depth, **search)
    rest, _ = run(index, questions, **search)
    return [top + [key for key in more if key not in top] for top, more in zip(first, rest)], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=None, help="score the first N test questions (default: all)")
    parser.add_argument("--embedder", default=None, help="another embedding model (a fine-tuned one) to compare")
    parser.add_argument("--reranker", default=None, help="a cross-encoder reranking the first hybrid hits")
    parser.add_argument("--rerank_depth", type=int, default=10, help="how many hybrid hits the reranker rereads")
    parser.add_argument("--rerank_questions", type=int, default=300, help="the random test questions it is run on")
    parser.add_argument("--skip_base", action="store_true", help="leave out the base embedder's rows")
    parser.add_argument("--validation_paragraphs", type=int, default=400)
    args = parser.parse_args()
    need_data()
    documents, questions, relevant = squad(TEST_FILE)
    if args.questions:
        questions, relevant = questions[: args.questions], relevant[: args.questions]
    val_docs, val_questions, val_relevant = squad(VALIDATION_FILE, args.validation_paragraphs, last=True)
    sample = sorted(random.Random(0).sample(range(len(questions)), min(args.rerank_questions, len(questions))))
    s_questions, s_relevant = [questions[i] for i in sample], [relevant[i] for i in sample]
    print(f"machine: {machine()}")
    print(f"validation: {len(val_questions)} questions on the last {len(val_docs)} train-subset paragraphs")
    print(f"test: {len(questions)} questions, {len(documents)} paragraphs")
    reranker = load("reranking", args.reranker) if args.reranker else None
    sampled: list[tuple[str, dict, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        best = None
        if not args.skip_base:
            chosen = choose(os.path.join(tmp, "validation"), val_docs, val_questions, val_relevant, None)
            index, built = build(os.path.join(tmp, "dev"), documents, None)
            print(f"index (base embedder) built in {built:.0f} s")
            header("All test questions:")
            dense, dense_s = run(index, questions, mode="dense")
            row("dense, all-MiniLM-L6-v2", scores(dense, relevant), dense_s, len(questions))
            bm25, bm25_s = run(index, questions, mode="bm25")
            row("BM25 (Milvus, English stop words)", scores(bm25, relevant), bm25_s, len(questions))
            hybrid, hybrid_s = run(index, questions, mode="hybrid")
            row("hybrid, RRF k 60, equal weights", scores(hybrid, relevant), hybrid_s, len(questions))
            assert hybrid == fused(dense, bm25, (1.0, 1.0))  # the offline fusion below is the index's own
            ranked = fused(dense, bm25, chosen)
            row(f"hybrid, weights {chosen} (validation)", scores(ranked, relevant), hybrid_s, len(questions))
            best = (index, chosen, f"hybrid, weights {chosen}", ranked, hybrid_s)
        if args.embedder:
            if best is not None:
                best[0].close()
            weights = choose(os.path.join(tmp, "val-tuned"), val_docs, val_questions, val_relevant, args.embedder)
            tuned, built = build(os.path.join(tmp, "tuned"), documents, args.embedder)
            print(f"index (fine-tuned embedder) built in {built:.0f} s")
            header("All test questions, fine-tuned embedder:")
            t_dense, seconds = run(tuned, questions, mode="dense")
            row("dense, fine-tuned embedder", scores(t_dense, relevant), seconds, len(questions))
            t_bm25, _ = run(tuned, questions, mode="bm25")
            t_best, seconds = run(tuned, questions, mode="hybrid", weights=weights)
            assert t_best == fused(t_dense, t_bm25, weights)
            name = f"hybrid {weights}, fine-tuned embedder"
            row(name, scores(t_best, relevant), seconds, len(questions))
            best = (tuned, weights, name, t_best, seconds)
        if reranker is not None and best is not None:
            index, weights, name, ranked, seconds = best
            sampled.append((name, scores([ranked[i] for i in sample], s_relevant), seconds))
            ranked, seconds = reranked(index, s_questions, reranker, args.rerank_depth, mode="hybrid", weights=weights)
            sampled.append((f"{name} + reranker (first {args.rerank_depth})", scores(ranked, s_relevant), seconds))
        if best is not None:
            best[0].close()
    if sampled:
        header(f"{len(sample)} random test questions (seed 0), with and without the reranker:")
        for name, s, seconds in sampled:
            n = len(questions) if "reranker" not in name else len(sample)
            row(name, s, seconds, n)


if __name__ == "__main__":
    main()
