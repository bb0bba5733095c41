"""The index at scale: `hfapps.Index` (Milvus Lite, HNSW M 16 / efConstruction 200, cosine) holding 100,000 and
1,000,000 384-dimensional vectors: build time and memory, query latency p50/p99 at 1 and 16 concurrent clients
(threads sharing one index), and recall@10 of the HNSW search against an exact search (numpy, same vectors).

The vectors are synthetic unit vectors around 2,000 centres (real embeddings cluster; i.i.d. Gaussian vectors are
the worst case of every HNSW index, FINDINGS in the PR), added with `Index.add(documents, vectors=...)` in batches of
5,000; each document's text is a short word string, so Milvus's BM25 field is filled as in real use.

    python benchmarks/bench_index.py                       # 100,000 and 1,000,000 vectors (an idle machine, ~1 hour)
    python benchmarks/bench_index.py --sizes 20000         # a quick check that it runs
"""

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from hfapps.retrieval.index import Index  # noqa: E402

from common import machine  # noqa: E402

DIMENSION, CENTRES, BATCH, QUERIES = 384, 2000, 5000, 200
WORDS = ["river", "stone", "cloud", "paper", "orange", "engine", "garden", "winter", "silver", "market"]


def vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((CENTRES, DIMENSION)).astype(np.float32)
    x = centres[rng.integers(0, CENTRES, n)] + 0.35 * rng.standard_normal((n, DIMENSION)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def latencies(index: Index, queries: np.ndarray, clients: int) -> list[float]:
    def one(q: np.ndarray) -> float:
        start = time.perf_counter()
        index.search(q, k=10, mode="dense")
        return time.perf_counter() - start

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, queries))


def run(n: int, folder: str) -> None:
    data = vectors(n, seed=1)
    queries = vectors(QUERIES, seed=2)
    before = rss_mb()
    start = time.perf_counter()
    index = Index(folder)
    for i in range(0, n, BATCH):
        part = data[i : i + BATCH]
        documents = [
            {"id": str(i + j), "text": f"{WORDS[(i + j) % 10]} {WORDS[(i + j) // 10 % 10]} {i + j}"}
            for j in range(len(part))
        ]
        index.add(documents, vectors=part, batch_size=BATCH)
    inserted = time.perf_counter() - start
    index.close()  # flushes, waits for the background HNSW builds
    built = time.perf_counter() - start
    index = Index(folder)
    reopened = time.perf_counter() - start - built
    index.search(queries[0], k=10, mode="dense")
    memory = rss_mb() - before
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    found = index.search(queries, k=10, mode="dense")
    recall = np.mean([len({int(h["id"]) for h in hits} & set(row.tolist())) / 10 for hits, row in zip(found, exact)])
    one = latencies(index, queries, 1)
    sixteen = latencies(index, queries, 16)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(folder) for f in fs) / 2**20
    index.close()

    def p(values: list[float], q: float) -> float:
        return 1000 * statistics.quantiles(values, n=100)[int(q) - 1]

    print(
        f"| {n:,} | {inserted:.0f} s | {built:.0f} s | {reopened:.1f} s | {memory:.0f} MB "
        f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB) | {size:.0f} MB | "
        f"{p(one, 50):.1f} / {p(one, 99):.1f} ms | {p(sixteen, 50):.1f} / {p(sixteen, 99):.1f} ms | {recall:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        "| vectors | insert | insert + close (indexes built) | reopen | memory (RSS growth) | folder | "
        "p50 / p99, 1 client | p50 / p99, 16 clients | recall@10 vs exact |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            run(n, os.path.join(tmp, "index"))


if __name__ == "__main__":
    main()
