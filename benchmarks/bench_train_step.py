"""Where a training step's time goes, and what the cheaper steps tried for SST-2 buy.

    python benchmarks/bench_train_step.py

MiniLM-L6 (the sentiment recipe's model) on 32 SST-2 training sentences a step, in length-sorted batches as the
recipe's group_by_length gives, fused AdamW at 1e-4. Each variant takes 10 warm-up steps (which include
torch.compile's compiling), then 80 timed steps on the same batches; the baseline is the step as the recipe
runs it. Prints training tokens per second for each, the float32 and bfloat16 matmul peaks of the same run
(CPUs differ: bfloat16 is slower than float32 on some, faster on those with AMX), and a
torch.profiler table of 20 baseline steps.
"""

import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from hfapps import models  # noqa: E402

from common import need_data, print_float_peaks, sst2  # noqa: E402

BATCH, WARMUP, STEPS, MAX_LENGTH = 32, 10, 80, 64
VARIANTS = {  # name: (dropout on, word embeddings trained, compiled, bfloat16 autocast)
    "as shipped": (True, True, False, False),
    "dropout 0": (False, True, False, False),
    "dropout 0, word embeddings frozen": (False, False, False, False),
    "torch.compile(model, dynamic=True)": (True, True, True, False),
    "the same, dropout 0": (False, True, True, False),
    "bfloat16 autocast (--bf16 true)": (True, True, False, True),
}


def batches(path: str) -> list[dict]:
    texts = sst2("train")[0]
    random.Random(0).shuffle(texts)
    texts = sorted(texts[:12800], key=len)
    groups = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    random.Random(0).shuffle(groups)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return [
        tokenizer(g, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        for g in groups[: WARMUP + STEPS + 20]
    ]


def trainer_step(path: str, dropout: bool, train_embeddings: bool, compiled: bool, bf16: bool):
    torch.manual_seed(0)
    extra = {} if dropout else {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, **extra)
    model.get_input_embeddings().weight.requires_grad_(train_embeddings)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    model.train()
    forward = torch.compile(model, dynamic=True) if compiled else model

    def step(batch: dict) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = forward(**batch, labels=torch.zeros(len(batch["input_ids"]), dtype=torch.long)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def main() -> None:
    need_data()
    path = models.resolve("sentence-transformers/all-MiniLM-L6-v2")[0].path
    data = batches(path)
    print_float_peaks()
    timed_tokens = sum(b["input_ids"].numel() for b in data[WARMUP : WARMUP + STEPS])
    baseline = None
    for name, flags in VARIANTS.items():
        step = trainer_step(path, *flags)
        start = time.perf_counter()
        for batch in data[:WARMUP]:
            step(batch)
        warmup = time.perf_counter() - start
        start = time.perf_counter()
        for batch in data[WARMUP : WARMUP + STEPS]:
            step(batch)
        rate = timed_tokens / (time.perf_counter() - start)
        baseline = baseline or rate
        print(
            f"{name:38s} {rate:7,.0f} tokens/s ({rate / baseline:.2f}x as shipped), {warmup:5.1f} s for the "
            f"{WARMUP} warm-up steps",
            flush=True,
        )
    step = trainer_step(path, *VARIANTS["as shipped"])
    for batch in data[:WARMUP]:
        step(batch)
    with torch.profiler.profile() as prof:
        for batch in data[WARMUP + STEPS :]:
            step(batch)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
