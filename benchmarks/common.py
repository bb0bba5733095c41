"""Shared by the benchmarks: the workloads (real text from ../shared/data), a fine-tuned MiniLM to run
them on, the machine's measured peak matmul speed, and FLOP counts."""

from __future__ import annotations

import csv
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("HFAPPS_DATA", os.path.join(HERE, "..", "..", "shared", "data"))
CACHE = os.path.join(HERE, ".cache")


def need_data() -> None:
    if not os.path.isdir(DATA):
        print(f"skipped: {DATA} (the shared datasets) is not present")
        sys.exit(0)


def sst2(split: str = "dev", limit: int | None = None) -> tuple[list[str], list[int]]:
    with open(os.path.join(DATA, "sst2", f"{split}.tsv"), encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle][1:]
    rows = rows[:limit] if limit else rows
    return [r[0] for r in rows], [int(r[1]) for r in rows]


def ag_news(limit: int) -> list[str]:
    with open(os.path.join(DATA, "ag_news", "test.csv"), encoding="utf-8", newline="") as handle:
        return [f"{title}. {body}" for _, title, body in list(csv.reader(handle))[:limit]]


def squad_contexts(limit: int) -> list[str]:
    with open(os.path.join(DATA, "squad", "dev-v1.1-first-half.json"), encoding="utf-8") as handle:
        articles = json.load(handle)["data"]
    contexts = [p["context"] for a in articles for p in a["paragraphs"]][:limit]
    # Every other one doubled, so the mix reaches past 500 tokens.
    return [c + " " + c if i % 2 else c for i, c in enumerate(contexts)]


def mixed_texts(sst2_n: int, ag_n: int, squad_n: int) -> list[str]:
    """SST-2 dev sentences, AG News articles and SQuAD contexts, interleaved (5 to 500+ tokens)."""
    import random

    texts = sst2("dev", sst2_n)[0] + ag_news(ag_n) + squad_contexts(squad_n)
    random.Random(0).shuffle(texts)
    return texts


def sst2_run(recipe: str, name: str, *extra: str) -> str:
    """`recipe` trained on the SST-2 files into the benchmarks' cache as `name` (once; later calls reuse it)."""
    out = os.path.join(CACHE, name)
    if not os.path.isfile(os.path.join(out, "hfapps.json")):
        from hfapps.training.runner import train

        train(
            recipe,
            [
                "--dataset_name",
                "",
                "--train_file",
                os.path.join(DATA, "sst2", "train.tsv"),
                "--validation_file",
                os.path.join(DATA, "sst2", "dev.tsv"),
                *extra,
                "--output_dir",
                out,
                "--overwrite",
                "true",
                "--save_strategy",
                "no",
                "--eval_strategy",
                "no",
                "--load_best_model_at_end",
                "false",
            ],
        )
    return out


def sentiment_model() -> str:
    """MiniLM-L6 fine-tuned for one epoch on 2,000 SST-2 sentences (cached), so labels mean something."""
    return sst2_run("sentiment", "minilm-sst2", "--max_train_samples", "2000")


def peak_flops(dtype: torch.dtype, n: int = 2048, repeat: int = 10) -> float:
    """Measured FLOP/s of an n x n matmul on this machine (the best of `repeat`)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def peak_int8_ops(n: int = 2048, repeat: int = 10) -> float:
    """Measured int8 multiply-adds x 2 per second of an n x n ONNX Runtime MatMulInteger (the kernel that int8
    exports run on: VNNI where the CPU has it), the best of `repeat`."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])],
        "peak",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [n, n]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.integers(0, 255, (n, n), dtype=np.uint8), "b": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    session.run(None, feed)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def teacher_model() -> str:
    """MiniLM-L6 fine-tuned with the shipped sentiment recipe on 20,000 SST-2 sentences (cached): the model the
    compression benchmarks export and distill (0.875 SST-2 dev accuracy when it was trained here)."""
    return sst2_run("sentiment", "sentiment-teacher", "--max_train_samples", "20000")


def print_peaks() -> tuple[float, float]:
    """Measure and print the float32 matmul and int8 MatMulInteger peaks; return them (FLOP/s, OP/s)."""
    peak32, peak8 = peak_flops(torch.float32), peak_int8_ops()
    print(
        f"machine: {machine()}; peak {peak32 / 1e9:.0f} GFLOP/s float32 matmul, {peak8 / 1e9:.0f} GOP/s int8 "
        "MatMulInteger (ONNX Runtime)"
    )
    return peak32, peak8


def print_float_peaks() -> dict[str, float]:
    """Measure and print the float32 and bfloat16 matmul peaks (CPUs differ: bfloat16 is slower than float32 on
    some, several times faster on those with AMX); return them in FLOP/s by dtype name."""
    peaks = {"float32": peak_flops(torch.float32), "bfloat16": peak_flops(torch.bfloat16)}
    print(
        f"machine: {machine()}; peak matmul {peaks['float32'] / 1e9:.0f} GFLOP/s fp32, "
        f"{peaks['bfloat16'] / 1e9:.0f} GFLOP/s bf16"
    )
    return peaks


def encoder_flops(config, lengths: list[int]) -> float:
    """Forward FLOPs of a BERT-style encoder: 2 x non-embedding parameters x tokens, plus attention
    (QK^T and AV: 4 x hidden x tokens^2 per layer)."""
    h, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    per_token = layers * (4 * h * h + 2 * h * inter) * 2
    return sum(per_token * n + layers * 4 * h * n * n for n in lengths)


def seq2seq_flops(config, source_lengths: list[int], new_tokens: int) -> float:
    """Greedy-decoding FLOPs of a T5-style encoder-decoder: the encoder over each source, the cross-attention
    keys and values once, then `new_tokens` decoding steps (self- and cross-attention, feed-forward, output layer)."""
    d, ff, vocab = config.d_model, config.d_ff, config.vocab_size
    enc, dec = config.num_layers, config.num_decoder_layers
    total = 0
    for n in source_lengths:
        total += enc * (2 * (4 * d * d + 2 * d * ff) * n + 4 * d * n * n) + dec * 2 * 2 * d * d * n
        total += sum(
            dec * (2 * (6 * d * d + 2 * d * ff) + 4 * d * i + 4 * d * n) + 2 * d * vocab
            for i in range(1, new_tokens + 1)
        )
    return total


def causal_lm_flops(config, prompt_lengths: list[int], new_tokens: int) -> float:
    """Greedy-decoding FLOPs of a Llama-style decoder: the prompt, then `new_tokens` steps."""
    d, ff, layers, vocab = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    kv = d * config.num_key_value_heads // config.num_attention_heads
    per_token = layers * 2 * (2 * d * d + 2 * d * kv + 3 * d * ff)
    total = 0
    for n in prompt_lengths:
        total += per_token * n + layers * 4 * d * n * n / 2  # causal attention over the prompt
        total += sum(per_token + layers * 4 * d * (n + i) + 2 * d * vocab for i in range(1, new_tokens + 1))
    return total


def machine() -> str:
    """The CPU as hfapps sees it (its model, the instruction sets that decide the int8 and bfloat16 paths), the cores
    and threads: every figure holds for the CPU it was measured on."""
    from hfapps.cpu import cpu

    here = cpu()
    return (
        f"{here.describe()}; int8 kernels: {here.int8_kernels}; bfloat16: "
        f"{'native' if here.bf16_native else 'emulated'}; {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def best_of(repeats: int, fn, *args, **kwargs):
    """(the result, the best time of `repeats` calls): the machine is shared and noisy, the best run is the
    least disturbed one."""
    best, result = float("inf"), None
    for _ in range(repeats):
        result, seconds = timed(fn, *args, **kwargs)
        best = min(best, seconds)
    return result, best
