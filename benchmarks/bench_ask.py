"""`hfapps.ask` end to end on SQuAD: exact match and F1 of answers read from retrieved passages, against the same
extractive reader given each question's own (gold) paragraph. The gap is what retrieval loses.

The corpus is every paragraph of `../shared/data/squad/dev-v1.1-first-half.json` (1,048) in one `hfapps.Index`;
the questions are a fixed random sample of its questions (seed 0). For each, `hfapps.ask` retrieves the `--k` best
passages (hybrid search; `--reranker` rereads the first 20), and the reader picks the best span over them. Scored with
hfapps' offline SQuAD metric against all of a question's gold answers. No extractive QA model ships offline: the
reader is one trained with the question-answering recipe (`--reader`), whose EM/F1 on gold paragraphs is its own
ceiling here.

    python benchmarks/bench_ask.py --reader runs/qa
    python benchmarks/bench_ask.py --reader runs/qa --embedder runs/embedding --reranker runs/reranker
"""

import argparse
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import evaluate  # noqa: E402
from bench_retrieval import TEST_FILE, paragraphs  # noqa: E402

import hfapps.metrics  # noqa: E402
from hfapps.api import load  # noqa: E402
from hfapps.retrieval.ask import ask  # noqa: E402
from hfapps.retrieval.index import Index  # noqa: E402

from common import machine, need_data  # noqa: E402

SQUAD = os.path.join(os.path.dirname(hfapps.metrics.__file__), "squad")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", required=True, help="an extractive QA model (the question-answering recipe's)")
    parser.add_argument("--questions", type=int, default=300, help="random test questions (seed 0)")
    parser.add_argument("--k", type=int, default=5, help="passages the reader reads per question")
    parser.add_argument("--embedder", default=None, help="the index's embedding model (default: all-MiniLM-L6-v2)")
    parser.add_argument("--reranker", default=None, help="a cross-encoder rereading the first 20 hybrid hits")
    args = parser.parse_args()
    need_data()
    found = paragraphs(TEST_FILE)
    qas = [(qa, p) for p in found for qa in p["qas"]]
    sample = [qas[i] for i in sorted(random.Random(0).sample(range(len(qas)), min(args.questions, len(qas))))]
    references = [[a["text"] for a in qa["answers"]] for qa, _ in sample]
    reader = load("question-answering", args.reader)
    reranker = load("reranking", args.reranker) if args.reranker else None
    metric = evaluate.load(SQUAD)
    print(f"machine: {machine()}")
    print(f"{len(sample)} random questions of {len(qas)}; corpus {len(found)} paragraphs; reader {args.reader}")

    start = time.perf_counter()
    gold = reader([{"question": qa["question"], "context": p["text"]} for qa, p in sample])
    gold_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        index = Index(os.path.join(tmp, "index"), model=args.embedder)
        index.add([{"id": p["id"], "text": p["text"], "title": p["title"]} for p in found], batch_size=128)
        start, answers = time.perf_counter(), []
        for qa, _ in sample:
            answers.append(ask(qa["question"], index=index, reader=reader, k=args.k, rerank=reranker, rerank_depth=20))
        ask_s = time.perf_counter() - start
        index.close()

    read_gold = metric.compute(predictions=[a["answer"] for a in gold], references=references)
    retrieved = metric.compute(predictions=[a["answer"] or "" for a in answers], references=references)
    found_gold = sum(p["id"] in {s["id"] for s in a["sources"]} for (_, p), a in zip(sample, answers)) / len(sample)
    from_gold = sum(a.get("id") == p["id"] for (_, p), a in zip(sample, answers)) / len(sample)
    pipeline = f"hybrid{' + reranker' if reranker else ''}, {args.embedder or 'all-MiniLM-L6-v2'}, k {args.k}"
    print("| reader input | exact match | F1 | gold paragraph read | answer from it | ms/question |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| gold paragraph | {read_gold['exact_match']:.1f} | {read_gold['f1']:.1f} | 100% | 100% "
        f"| {1000 * gold_s / len(sample):.0f} |"
    )
    print(
        f"| hfapps.ask, {pipeline} | {retrieved['exact_match']:.1f} | {retrieved['f1']:.1f} | {100 * found_gold:.1f}% "
        f"| {100 * from_gold:.1f}% | {1000 * ask_s / len(sample):.0f} |"
    )
    print(
        f"retrieval loses {read_gold['exact_match'] - retrieved['exact_match']:.1f} points of exact match and "
        f"{read_gold['f1'] - retrieved['f1']:.1f} of F1"
    )


if __name__ == "__main__":
    main()
