"""The index at scale: `hfapps.Index` (Milvus Lite, HNSW M 16 / efConstruction 200, cosine) holding 100,000 and
1,000,000 384-dimensional vectors: build time and memory, query latency p50/p99 at 1 and 16 concurrent clients
(threads sharing one index), and recall@10 of the HNSW search against an exact search (numpy, same vectors).

The baseline, measured in the same run on the same open index, interleaved with hfapps: the same search (k 10,
ef 128, the same output fields) through pymilvus's `MilvusClient` on the same embedded Milvus Lite, with no hfapps
code. hfapps' 16-client figure gains from `milvus.SharedSearch` (concurrent searches share one Milvus call).

The vectors are synthetic unit vectors around 2,000 centres (real embeddings cluster; i.i.d. Gaussian vectors are
the worst case of every HNSW index), added with `Index.add(documents, vectors=...)` in batches of 5,000; each
document's text is a short word string, so Milvus's BM25 field is filled as in real use. Progress (rows, seconds,
RSS) goes to stderr.

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

from hfapps.retrieval import milvus  # noqa: E402
from hfapps.retrieval.index import Index  # noqa: E402

from common import machine  # noqa: E402

DIMENSION, CENTRES, BATCH, QUERIES, TIMED = 384, 2000, 5000, 200, 100
WORDS = ["river", "stone", "cloud", "paper", "orange", "engine", "garden", "winter", "silver", "market"]


def vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((CENTRES, DIMENSION)).astype(np.float32)
    out = np.empty((n, DIMENSION), dtype=np.float32)
    for i in range(0, n, 100_000):  # in parts: at 1,000,000 the temporaries would double the memory
        m = min(100_000, n - i)
        x = centres[rng.integers(0, CENTRES, m)] + 0.35 * rng.standard_normal((m, DIMENSION)).astype(np.float32)
        out[i : i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def exact_top10(queries: np.ndarray, data: np.ndarray) -> np.ndarray:
    """The true 10 nearest (cosine of unit vectors), scanned in parts so that 1,000,000 rows need no 2 GB matrix."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    for i in range(0, len(data), 100_000):
        scores = queries @ data[i : i + 100_000].T
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], axis=1)
        best_ids = np.concatenate([best_ids, top + i], axis=1)
        keep = np.argsort(-best_scores, axis=1)[:, :10]
        best_scores, best_ids = np.take_along_axis(best_scores, keep, 1), np.take_along_axis(best_ids, keep, 1)
    return best_ids


def latencies(search, queries: np.ndarray, clients: int) -> list[float]:
    def one(q: np.ndarray) -> float:
        start = time.perf_counter()
        search(q)
        return time.perf_counter() - start

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, queries))


def direct_client(folder: str):
    """pymilvus on the same embedded Milvus Lite, as pymilvus itself opens a `.db` path (no hfapps code)."""
    from milvus_lite.server_manager import server_manager_instance
    from pymilvus import MilvusClient

    client = MilvusClient(uri=server_manager_instance.start_and_get_uri(folder))

    def search(q: np.ndarray) -> None:
        client.search(
            "documents",
            data=[q.tolist()],
            anns_field="dense",
            limit=10,
            output_fields=["text", "metadata"],
            search_params={"metric_type": "COSINE", "params": {"ef": milvus.EF_SEARCH}},
        )

    return search


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
        if (i + BATCH) % 50_000 == 0:
            print(f"  {i + BATCH:,} rows, {time.perf_counter() - start:.0f} s, RSS {rss_mb():.0f} MB", file=sys.stderr)
    inserted = time.perf_counter() - start
    index.close()  # flushes, waits for the background HNSW builds
    built = time.perf_counter() - start
    print(f"  closed at {built:.0f} s, RSS {rss_mb():.0f} MB", file=sys.stderr)
    index = Index(folder)
    reopened = time.perf_counter() - start - built
    index.search(queries[0], k=10, mode="dense")
    memory = rss_mb() - before
    exact = exact_top10(queries, data)
    found = index.search(queries, k=10, mode="dense")
    recall = np.mean([len({int(h["id"]) for h in hits} & set(row.tolist())) / 10 for hits, row in zip(found, exact)])
    print(f"  recall {recall:.3f}; timing searches", file=sys.stderr)

    def hfapps_search(q: np.ndarray) -> None:
        index.search(q, k=10, mode="dense")

    baseline = direct_client(folder)
    timed: dict[tuple[str, int], list[float]] = {}
    for half in (queries[: TIMED // 2], queries[TIMED // 2 : TIMED]):  # interleaved, so load changes hit both
        for clients in (1, 16):
            for name, search in (("hfapps", hfapps_search), ("pymilvus", baseline)):
                timed.setdefault((name, clients), []).extend(latencies(search, half, clients))
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(folder) for f in fs) / 2**20
    index.close()

    def p(values: list[float], q: float) -> str:
        return f"{1000 * statistics.quantiles(values, n=100)[int(q) - 1]:.1f}"

    def cell(name: str, clients: int) -> str:
        return f"{p(timed[name, clients], 50)} / {p(timed[name, clients], 99)} ms"

    print(
        f"| {n:,} | {inserted:.0f} s | {built:.0f} s | {reopened:.1f} s | {memory:.0f} MB "
        f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB) | {size:.0f} MB | "
        f"{cell('hfapps', 1)} | {cell('hfapps', 16)} | {cell('pymilvus', 1)} | {cell('pymilvus', 16)} | "
        f"{recall:.3f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["100000", "1000000"], help="numbers of vectors (or a,b)")
    parser.add_argument("--folder", help="build the indexes here (kept) instead of in a temporary folder")
    args = parser.parse_args()
    sizes = [int(s) for value in args.sizes for s in value.split(",")]
    print(f"machine: {machine()}")
    print(
        "| vectors | insert | insert + close (indexes built) | reopen | memory (RSS growth) | folder | "
        "hfapps p50 / p99, 1 client | hfapps, 16 clients | pymilvus direct, 1 client | pymilvus direct, 16 clients "
        "| recall@10 vs exact |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for n in sizes:
        if args.folder:
            run(n, os.path.join(args.folder, f"index-{n}"))
            continue
        with tempfile.TemporaryDirectory() as tmp:
            run(n, os.path.join(tmp, "index"))


if __name__ == "__main__":
    main()
