"""`hfapps serve` under load, on loopback: dynamic batching against the same server with batching off
(`--max-batch-size 1`), and both against the offline `hfapps.sentiment` batch on the same texts.

    python benchmarks/bench_serve.py [--requests 512] [--model FOLDER]
    python benchmarks/bench_serve.py --embeddings [--requests 512] [--model FOLDER]

`--embeddings` serves an embedder instead (default: the packaged all-MiniLM-L6-v2) and sends each sentence to
`POST /v1/embeddings` in OpenAI's request shape, against the offline `hfapps.embed` over the same texts; every
vector is compared with the offline one (least cosine).

Workload: SST-2 dev sentences, one per request, from 64 concurrent clients: keep-alive HTTP/1.1 connections
driven by asyncio in this process, which shares the machine's cores with the server. Latency p50/p99 at 1, 16
and 64 concurrent clients. Every answer is compared with the offline helper's (labels, and the largest score
difference). The ceiling of batching's gain is printed beside it: the offline batch against the offline
helper called once per text, on the same texts (a server cannot batch better than the helper itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import hfapps  # noqa: E402
from hfapps.cli.sharding import free_port  # noqa: E402

from common import machine, need_data, sentiment_model, sst2  # noqa: E402

ROUTES = {  # the served model's name: its path, and a request body for one text
    "sentiment": ("/v1/sentiment", lambda text: {"inputs": text}),
    "embed": ("/v1/embeddings", lambda text: {"model": "embed", "input": text}),
}


async def client(port: int, name: str, queue: asyncio.Queue, out: list) -> None:
    """One keep-alive connection sending the queued texts one request at a time."""
    path, request = ROUTES[name]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not queue.empty():
            index, text = queue.get_nowait()
            body = json.dumps(request(text)).encode()
            start = time.perf_counter()
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            status = (await reader.readline()).split()[1]
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                length = int(value) if name.lower() == "content-length" else length
            answer = json.loads(await reader.readexactly(length))
            if status != b"200":
                raise RuntimeError(f"HTTP {status.decode()}: {answer}")
            out[index] = (time.perf_counter() - start, answer)
    finally:
        writer.close()


def start_server(model: str, *extra: str, name: str = "sentiment") -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hfapps", "serve", "--model", f"{name}={model}", "--port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(base + "/ready", timeout=2) as response:
                if response.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def load(port: int, texts: list[str], clients: int, name: str = "sentiment") -> tuple[float, list[float], list[dict]]:
    """Requests per second, each request's latency, and the answers, in the texts' order."""

    async def run(sample: list[str]) -> float:
        queue: asyncio.Queue = asyncio.Queue()
        for item in enumerate(sample):
            queue.put_nowait(item)
        start = time.perf_counter()
        await asyncio.gather(*(client(port, name, queue, out) for _ in range(clients)))
        return time.perf_counter() - start

    out: list = [None] * len(texts)
    asyncio.run(run(texts[:clients]))  # warm-up: open the connections' first requests, fill the caches
    out = [None] * len(texts)
    wall = asyncio.run(run(texts))
    return len(texts) / wall, [a[0] for a in out], [a[1] for a in out]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument(
        "--model",
        default=None,
        help="a sentiment model folder (default: the cached MiniLM; an `hfapps export` folder works too)",
    )
    parser.add_argument("--embeddings", action="store_true", help="serve an embedder on /v1/embeddings instead")
    args = parser.parse_args()
    need_data()
    texts = sst2("dev", args.requests)[0]
    print(machine())
    if args.embeddings:
        compare("embed", args.model or "sentence-transformers/all-MiniLM-L6-v2", texts, hfapps.embed, agree_vectors)
    else:
        compare("sentiment", args.model or sentiment_model(), texts, hfapps.sentiment, agree_labels)


def agree_labels(answers: list[dict], offline: list[dict]) -> str:
    identical = sum(a["label"] == b["label"] for a, b in zip(answers, offline)) / len(offline)
    score_gap = max(abs(a["score"] - b["score"]) for a, b in zip(answers, offline))
    return f"labels {identical:.1%} identical to offline (scores within {score_gap:.1e}: batches pad differently)"


def agree_vectors(answers: list[dict], offline) -> str:
    import numpy as np

    vectors = np.array([a["data"][0]["embedding"] for a in answers], dtype=np.float32)
    return f"least cosine to offline {float(np.min(np.sum(vectors * offline, axis=1))):.6f}"


def compare(name: str, model: str, texts: list[str], helper, agreement) -> None:
    """The served model `name` at 64 clients, with dynamic batching and without, against its offline helper (one
    call over every text, and one call per text: the ceiling of what batching can gain); `agreement(answers,
    offline)` says how far the served answers are from the helper's."""
    helper(texts[:8], model=model)
    start = time.perf_counter()
    offline = helper(texts, model=model)
    offline_rate = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    for text in texts[:128]:
        helper(text, model=model)
    one_rate = 128 / (time.perf_counter() - start)
    hfapps.clear_cache()
    print(
        f"offline hfapps.{helper.__name__}, one call over {len(texts)} texts: {offline_rate:.1f} texts/s; one call "
        f"per text: {one_rate:.1f} texts/s (so batching can gain {offline_rate / one_rate:.2f}x at most)"
    )
    rows = {}
    for label, extra in (("batching (default)", ()), ("no batching (--max-batch-size 1)", ("--max-batch-size", "1"))):
        process, port = start_server(model, *extra, name=name)
        try:
            rate, _, answers = load(port, texts, 64, name=name)
            agreed = agreement(answers, offline)
            latency = {c: load(port, texts[: 64 if c == 1 else 256], c, name=name)[1] for c in (1, 16, 64)}
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        rows[label] = rate
        lat = "  ".join(
            f"{c} clients p50 {1000 * percentile(v, 50):.0f} ms p99 {1000 * percentile(v, 99):.0f} ms"
            for c, v in latency.items()
        )
        print(f"{label}: {rate:.1f} requests/s with 64 clients; {agreed}; {lat}")
    batched, single = rows["batching (default)"], rows["no batching (--max-batch-size 1)"]
    print(f"batching / no batching: {batched / single:.2f}x;  batching / offline batch: {batched / offline_rate:.0%}")


if __name__ == "__main__":
    main()
