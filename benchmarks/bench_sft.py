"""Quality of instruction tuning: SST-2 as instructions, answered by the chat model's generated word, before and
after `sft` (recipes/sft.yaml with the sft_classifier fragment's keys) within a budget of training CPU time.

    nice -n 10 python benchmarks/bench_sft.py --train-rows 4000 --budget 600 --dev 872

Each SST-2 sentence becomes one user turn: "Is the sentiment of this movie review positive or negative? Answer
with one word." and the review, through the model's chat template (SmolLM2's default system prompt included).
Before: the packaged SmolLM2-135M-Instruct. After: the same model after the sft recipe (LoRA) on a seeded random
subset of SST-2 train, stopped when the training loop has used `--budget` CPU-seconds (process CPU time, not
wall; a constant learning rate after a short warm-up, so that a stop at any step is a finished schedule). Scored
on SST-2 dev (all 872 sentences, or a seeded random `--dev` of them): accuracy of the generated answer (greedy,
4 new tokens, its first word lower-cased and stripped of punctuation; anything but the two labels is wrong) and
the share of answers that are a valid label. One torch thread (on a shared CPU, two spin-wait on each other).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from common import CACHE, machine, need_data, sst2  # noqa: E402

QUESTION = "Is the sentiment of this movie review positive or negative? Answer with one word."
LABELS = ("negative", "positive")
BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuBudget(TrainerCallback):
    """Stops training once the training loop has used `budget` seconds of this process's CPU time."""

    def __init__(self, budget: float) -> None:
        self.budget, self.start, self.used, self.steps = budget, 0.0, 0.0, 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = cpu_seconds()

    def on_step_end(self, args, state, control, **kwargs):
        self.used, self.steps = cpu_seconds() - self.start, state.global_step
        if self.used >= self.budget:
            control.should_training_stop = True


def answer_label(text: str) -> str | None:
    words = re.findall(r"[a-z]+", text.lower())
    return words[0] if words and words[0] in LABELS else None


def score(model: str, sentences: list[str], labels: list[int]) -> dict[str, float]:
    import hfapps

    conversations = [[{"role": "user", "content": f"{QUESTION}\n\n{s.strip()}"}] for s in sentences]
    start, cpu = time.perf_counter(), cpu_seconds()
    answers = hfapps.chat(conversations, model=model, max_new_tokens=4)
    parsed = [answer_label(a["content"]) for a in answers]
    valid = sum(p is not None for p in parsed)
    correct = sum(p == LABELS[y] for p, y in zip(parsed, labels))
    hfapps.clear_cache()
    return {
        "accuracy": round(correct / len(labels), 4),
        "valid": round(valid / len(labels), 4),
        "rows": len(labels),
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(cpu_seconds() - cpu, 1),
        "examples": [a["content"] for a in answers[:5]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=4000, help="random SST-2 train rows written as instructions")
    parser.add_argument("--budget", type=float, default=600.0, help="training CPU-seconds")
    parser.add_argument("--dev", type=int, default=872, help="SST-2 dev rows scored (872: all)")
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--skip-before", action="store_true")
    parser.add_argument("--only-before", action="store_true", help="score the untuned model only")
    parser.add_argument("--extra", default="", help="more recipe overrides, e.g. '--learning_rate 3e-4'")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    need_data()
    torch.set_num_threads(args.threads)
    print(machine())

    dev_x, dev_y = sst2("dev")
    if args.dev < len(dev_x):
        keep = sorted(random.Random(0).sample(range(len(dev_x)), args.dev))
        dev_x, dev_y = [dev_x[i] for i in keep], [dev_y[i] for i in keep]
    train_x, train_y = sst2("train")
    order = random.Random(0).sample(range(len(train_x)), args.train_rows + 64)
    work = os.path.join(CACHE, "sft")
    os.makedirs(work, exist_ok=True)
    files = {}
    for name, rows in (("train", order[64:]), ("validation", order[:64])):
        files[name] = os.path.join(work, f"sst2_{name}.csv")
        with open(files[name], "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows([train_x[i].strip(), LABELS[train_y[i]]] for i in rows)

    results: dict[str, dict] = {}
    if not args.skip_before:
        results["before"] = score(BASE, dev_x, dev_y)
        print("before:", json.dumps(results["before"]))
    if args.only_before:
        return

    from hfapps.training.runner import train

    overrides = [
        *("--train_file", files["train"], "--validation_file", files["validation"]),
        *("--prompt_template", QUESTION + "\n\n{text}", "--label_column", "label"),
        *("--max_steps", str(args.max_steps), "--lr_scheduler_type", "constant_with_warmup", "--warmup_steps", "10"),
        *("--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "10", "--max_length", "160"),
        *("--output_dir", os.path.join(work, "run"), "--overwrite", "true", "--report_to", "none"),
        *args.extra.split(),
    ]
    budget = CpuBudget(args.budget)
    start = time.perf_counter()
    metrics = train("sft", overrides, callbacks=[budget])
    results["training"] = {
        "cpu_seconds": round(budget.used, 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "steps": budget.steps,
        "examples_seen": budget.steps * 8,
        "eval_loss": metrics["eval"].get("eval_loss"),
        "overrides": " ".join(overrides),
    }
    print("training:", json.dumps(results["training"]))
    results["after"] = score(os.path.join(work, "run"), dev_x, dev_y)
    print("after:", json.dumps(results["after"]))
    with open(os.path.join(work, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
