"""`hfapps serve` under load, on loopback: dynamic batching against the same server with batching off
(`--max-batch-size 1`), and both against the offline `hfapps.sentiment` batch on the same texts.

    python benchmarks/bench_serve.py [--requests 512]

Workload: SST-2 dev sentences, one per request, from 64 concurrent clients (threads in this process, which
share the machine's cores with the server). Latency p50/p99 at 1, 16 and 64 concurrent clients. Every answer
is compared with the offline helper's (labels, and the largest score difference).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, need_data, sentiment_model, sst2  # noqa: E402

import hfapps  # noqa: E402
from hfapps.sharding import free_port  # noqa: E402


def post(url: str, text: str) -> tuple[float, dict]:
    request = urllib.request.Request(url, data=json.dumps({"inputs": text}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        body = json.loads(response.read())
    return time.perf_counter() - start, body


def start_server(model: str, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "hfapps", "serve", "--model", f"sentiment={model}", "--port",
                                str(port), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(base + "/ready", timeout=2) as response:
                if response.status == 200:
                    return process, base + "/v1/sentiment"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def load(url: str, texts: list[str], clients: int) -> tuple[float, list[float], list[dict]]:
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        post(url, texts[0])  # warm-up
        start = time.perf_counter()
        answers = list(pool.map(lambda t: post(url, t), texts))
        wall = time.perf_counter() - start
    return len(texts) / wall, [a[0] for a in answers], [a[1] for a in answers]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=512)
    args = parser.parse_args()
    need_data()
    model = sentiment_model()
    texts = sst2("dev", args.requests)[0]
    print(machine())
    hfapps.sentiment(texts[:8], model=model)
    start = time.perf_counter()
    offline = hfapps.sentiment(texts, model=model)
    offline_rate = len(texts) / (time.perf_counter() - start)
    hfapps.clear_cache()
    print(f"offline hfapps.sentiment, one call over {len(texts)} texts: {offline_rate:.1f} texts/s")
    rows = {}
    for name, extra in (("batching (default)", ()), ("no batching (--max-batch-size 1)", ("--max-batch-size", "1"))):
        process, url = start_server(model, *extra)
        try:
            rate, _, answers = load(url, texts, 64)
            identical = sum(a["label"] == b["label"] for a, b in zip(answers, offline)) / len(texts)
            score_gap = max(abs(a["score"] - b["score"]) for a, b in zip(answers, offline))
            latency = {}
            for clients in (1, 16, 64):
                sample = texts[: min(len(texts), 64 if clients == 1 else 256)]
                latency[clients] = load(url, sample, clients)[1]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        rows[name] = rate
        lat = "  ".join(f"{c} clients p50 {1000 * percentile(v, 50):.0f} ms p99 {1000 * percentile(v, 99):.0f} ms"
                        for c, v in latency.items())
        print(f"{name}: {rate:.1f} requests/s with 64 clients; labels {identical:.1%} identical to offline "
              f"(scores within {score_gap:.1e}: batches pad differently); {lat}")
    batched, single = rows["batching (default)"], rows["no batching (--max-batch-size 1)"]
    print(f"batching / no batching: {batched / single:.2f}x;  batching / offline batch: {batched / offline_rate:.0%}")


if __name__ == "__main__":
    main()
