"""Probe: can a cross-encoder trained from all-MiniLM-L6-v2 within a few CPU-minutes lift the retrieval pipeline?

The reranker recipe trains on whole (question, paragraph) pairs and learnt nothing within 10 CPU-minutes of a 2-core
CPU. This probe gives it the easiest signal SQuAD has, at a fifth of the length: the SENTENCE that holds each
question's answer (SQuAD's answer offset finds it) against another sentence of the same paragraph and the two
sentences of other paragraphs BM25 ranks highest for the question; sentence-transformers' CrossEncoderTrainer,
BinaryCrossEntropyLoss (positives weighted 3 against the 3 negatives), pairs cut at 96 tokens. A paragraph then
scores as its best sentence (as long documents are scored by their best passage). Then, on a fixed random sample of
the test questions (the retrieval benchmark's corpus, sentence-transformers and bm25s directly): the reranker alone
over the first 10 hybrid hits, and fused with the dense and BM25 rankings (reciprocal rank fusion) at several
weights. The weights are chosen here on the test questions themselves: an upper bound, not a result to ship.

    python benchmarks/probe_sentence_reranker.py
    python benchmarks/probe_sentence_reranker.py --embedder runs/embedding      # the fine-tuned embedder's dense side
    python benchmarks/probe_sentence_reranker.py --questions 64 --test_questions 20   # a quick check that it runs
"""

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hfapps.models import packaged_model_path  # noqa: E402

from common import DATA, machine, need_data  # noqa: E402

SENTENCE_END = re.compile(r'(?<=[.!?])\s+(?=[A-Z0-9"])')


def sentences(text: str) -> list[tuple[int, int, str]]:
    """(start, end, sentence) of each sentence of `text`, split after ., ! or ? before a capital, digit or quote."""
    found, start = [], 0
    for piece in SENTENCE_END.split(text):
        begin = text.index(piece, start)
        found.append((begin, begin + len(piece), piece))
        start = begin + len(piece)
    return found


def articles(file: str) -> list[dict]:
    with open(os.path.join(DATA, "squad", file), encoding="utf-8") as f:
        return json.load(f)["data"]


def training_pairs(n: int, seed: int = 0) -> dict[str, list]:
    """(question, sentence, label) rows for `n` random questions of the SQuAD train subset."""
    import bm25s

    paragraphs = [p for a in articles("train-v1.1-subset.json") for p in a["paragraphs"]]
    every, owner = [], []
    for j, p in enumerate(paragraphs):
        for _, _, text in sentences(p["context"]):
            every.append(text)
            owner.append(j)
    bm25 = bm25s.BM25()
    bm25.index(bm25s.tokenize(every, stopwords="en", show_progress=False), show_progress=False)
    rng = random.Random(seed)
    items = [(j, qa) for j, p in enumerate(paragraphs) for qa in p["qas"]]
    rng.shuffle(items)
    items = items[:n]
    hits, _ = bm25.retrieve(
        bm25s.tokenize([qa["question"] for _, qa in items], stopwords="en", show_progress=False),
        k=20,
        show_progress=False,
    )
    rows: dict[str, list] = {"query": [], "passage": [], "label": []}
    for (j, qa), hit in zip(items, hits, strict=True):
        own = sentences(paragraphs[j]["context"])
        start = qa["answers"][0]["answer_start"]
        positive = next(k for k, (begin, end, _) in enumerate(own) if begin <= start <= end)
        same = [text for k, (_, _, text) in enumerate(own) if k != positive]
        negatives = ([rng.choice(same)] if same else []) + [every[h] for h in hit if owner[h] != j][:2]
        for text, label in [(own[positive][2], 1.0)] + [(text, 0.0) for text in negatives]:
            rows["query"].append(qa["question"])
            rows["passage"].append(text)
            rows["label"].append(label)
    return rows


def train(rows: dict[str, list], folder: str, learning_rate: float, max_length: int):
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    base = packaged_model_path("sentence-transformers/all-MiniLM-L6-v2").path
    model = CrossEncoder(base, num_labels=1, max_length=max_length, device="cpu")
    arguments = CrossEncoderTrainingArguments(
        output_dir=folder,
        per_device_train_batch_size=32,
        learning_rate=learning_rate,
        num_train_epochs=1,
        warmup_steps=0.1,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        seed=42,
        use_cpu=True,
    )
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(3.0))
    CrossEncoderTrainer(model=model, args=arguments, train_dataset=Dataset.from_dict(rows), loss=loss).train()
    return model


def rrf(rankings: list[list[int]], weights: list[float], k: int = 60) -> list[int]:
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, doc in enumerate(ranking):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank + 1)
    return sorted(scores, key=lambda doc: -scores[doc])


def report(name: str, rankings: list[list[int]], gold: list[int]) -> None:
    top1 = np.mean([r[0] == g for r, g in zip(rankings, gold, strict=True)])
    mrr = np.mean([1 / (r[:10].index(g) + 1) if g in r[:10] else 0.0 for r, g in zip(rankings, gold, strict=True)])
    print(f"| {name} | {top1:.3f} | {mrr:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=1600, help="training questions (4 pairs each)")
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--max_length", type=int, default=96)
    parser.add_argument("--test_questions", type=int, default=300, help="random test questions (seed 1)")
    parser.add_argument("--embedder", default=None, help="the dense side (default: the packaged all-MiniLM-L6-v2)")
    args = parser.parse_args()
    need_data()
    import bm25s
    from sentence_transformers import SentenceTransformer

    print(f"machine: {machine()}")
    rows = training_pairs(args.questions)
    with tempfile.TemporaryDirectory() as folder:
        wall, cpu = time.perf_counter(), time.process_time()
        model = train(rows, folder, args.learning_rate, args.max_length)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"trained on {len(rows['label'])} pairs: {wall:.0f} s, {cpu / 60:.1f} CPU-minutes (all threads)")

    corpus = [p["context"] for a in articles("dev-v1.1-first-half.json") for p in a["paragraphs"]]
    test = [
        (qa["question"], j)
        for j, p in enumerate(p for a in articles("dev-v1.1-first-half.json") for p in a["paragraphs"])
        for qa in p["qas"]
    ]
    random.Random(1).shuffle(test)
    test = test[: args.test_questions]
    questions, gold = [q for q, _ in test], [j for _, j in test]
    bm25 = bm25s.BM25()
    bm25.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)
    found, _ = bm25.retrieve(bm25s.tokenize(questions, stopwords="en", show_progress=False), k=100, show_progress=False)
    lexical = [list(map(int, row)) for row in found]
    embedder = SentenceTransformer(args.embedder or packaged_model_path("sentence-transformers/all-MiniLM-L6-v2").path)
    similarity = (
        embedder.encode(questions, normalize_embeddings=True) @ embedder.encode(corpus, normalize_embeddings=True).T
    )
    dense = [list(map(int, row)) for row in np.argsort(-similarity, axis=1)[:, :100]]
    hybrid = [rrf([d, b], [1.0, 1.0]) for d, b in zip(dense, lexical, strict=True)]
    reranked, start = [], time.perf_counter()
    for question, hits in zip(questions, hybrid, strict=True):
        pairs = [(question, text, doc) for doc in hits[:10] for _, _, text in sentences(corpus[doc])]
        scores = model.predict([(q, text) for q, text, _ in pairs], batch_size=64)
        best: dict[int, float] = {}
        for (_, _, doc), score in zip(pairs, scores, strict=True):
            best[doc] = max(best.get(doc, -1e9), float(score))
        reranked.append(sorted(hits[:10], key=lambda doc: -best[doc]))
    per_question = (time.perf_counter() - start) / len(questions)
    print(
        f"\n{len(questions)} test questions; reranking the first 10 hybrid hits took {per_question * 1000:.0f} ms each"
    )
    print("\n| ranking | recall@1 | MRR@10 |\n| --- | --- | --- |")
    report("BM25", lexical, gold)
    report("dense", dense, gold)
    report("hybrid (RRF, equal weights)", hybrid, gold)
    report("the sentence reranker over the first 10 hybrid hits", reranked, gold)
    for weight in (0.5, 1.0, 2.0):
        fused = [rrf([d[:10], b[:10], r], [1.0, 1.0, weight]) for d, b, r in zip(dense, lexical, reranked, strict=True)]
        report(f"RRF of dense, BM25 and the reranker, weights 1 / 1 / {weight} (chosen on test: a bound)", fused, gold)


if __name__ == "__main__":
    main()
