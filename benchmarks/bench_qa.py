"""Extractive QA speed: hfapps.answer against the transformers 4.57 question-answering pipeline.

    python benchmarks/bench_qa.py

The 4.57 pipeline runs in the virtual environment the benchmarks create (tf457.py).
Model: MiniLM-L6 fine-tuned for one epoch on the first 800 questions of the SQuAD train subset (cached).
Workload: the first 200 questions of the SQuAD dev half with their contexts. Both sides: windows of 384
tokens, stride 128, batch 16. The two sides take turns, four rounds (a 4.57 run, then an hfapps run), and
each keeps its best time: on this shared machine the same run varies by up to 30%. hfapps runs in float32 and in
bfloat16 (which is faster than float32 only on CPUs with fast bf16 matmul, such as AMX: the machine line prints both
peaks). Prints questions/s, the ratio, identical answers, EM/F1 against the gold answers for each, and the share
of the measured peak for its dtype.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


import tf457  # noqa: E402

import hfapps  # noqa: E402
from hfapps import metrics  # noqa: E402

from common import CACHE, DATA, encoder_flops, need_data, print_float_peaks, timed  # noqa: E402

BATCH, N, ROUNDS = 16, 200, 4


def qa_model(train_samples: int = 800) -> str:
    """MiniLM-L6 after one epoch on the first `train_samples` SQuAD train questions (cached)."""
    out = os.path.join(CACHE, "minilm-squad" if train_samples == 800 else f"minilm-squad-{train_samples}")
    if not os.path.isfile(os.path.join(out, "hfapps.json")):
        from hfapps.training.runner import train

        train(
            "question_answering",
            [
                "--dataset_name",
                "",
                "--train_file",
                os.path.join(DATA, "squad", "train-v1.1-subset.json"),
                "--max_train_samples",
                str(train_samples),
                "--max_seq_length",
                "256",
                "--doc_stride",
                "96",
                "--output_dir",
                out,
                "--overwrite",
                "true",
                "--eval_strategy",
                "no",
                "--save_strategy",
                "no",
                "--validation_split_percentage",
                "5",
            ],
        )
    return out


def workload(n: int = N) -> tuple[list[str], list[str], list[list[str]]]:
    with open(os.path.join(DATA, "squad", "dev-v1.1-first-half.json"), encoding="utf-8") as handle:
        articles = json.load(handle)["data"]
    rows = [
        (qa["question"], p["context"], [a["text"] for a in qa["answers"]])
        for a in articles
        for p in a["paragraphs"]
        for qa in p["qas"]
    ][:n]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def main() -> None:
    need_data()
    model = qa_model()
    questions, contexts, gold = workload()
    peaks = print_float_peaks()
    # The model was trained with 256-token windows; both sides read with the 4.57 defaults (384, stride 128).
    tasks = {
        dtype: hfapps.load("question-answering", model, dtype=dtype, batch_size=BATCH, progress=False)
        for dtype in peaks
    }
    options = {"max_seq_len": 384, "doc_stride": 128}
    for task in tasks.values():
        task(question=questions[:2], context=contexts[:2], **options)
    base_s = float("inf")
    seconds = {dtype: float("inf") for dtype in tasks}
    outputs: dict[str, list] = {}
    for _ in range(ROUNDS):
        base = tf457.run(
            [
                {
                    "task": "question-answering",
                    "model": model,
                    "inputs": [{"question": q, "context": c} for q, c in zip(questions, contexts)],
                    "kwargs": {"batch_size": BATCH},
                }
            ]
        )
        base_s, base_out = min(base_s, base["runs"][0]["seconds"]), base["runs"][0]["outputs"]
        for dtype, task in tasks.items():
            outputs[dtype], this = timed(task, question=questions, context=contexts, **options)
            seconds[dtype] = min(seconds[dtype], this)
    task = tasks["float32"]
    windows = task.tokenizer(
        questions, contexts, truncation="only_second", max_length=384, stride=128, return_overflowing_tokens=True
    )["input_ids"]
    flops = encoder_flops(task.config, [len(ids) for ids in windows])
    squad = metrics.load("squad")
    base_scores = squad.compute(predictions=[b["answer"] for b in base_out], references=gold)
    scores = {
        dtype: squad.compute(predictions=[o["answer"] for o in out], references=gold) for dtype, out in outputs.items()
    }
    print(
        f"transformers {base['transformers']} in the baseline environment; {N} questions, {len(windows)} windows "
        f"of up to 384 tokens, {flops / 1e12:.2f} TFLOP; best of {ROUNDS} rounds\n"
    )
    print(
        f"{'':38s} {'questions/s':>11s} {'speed-up':>9s} {'EM':>6s} {'F1':>6s} {'% of peak':>10s} "
        f"{'answers = baseline':>19s} {'spans = baseline':>17s}"
    )
    rows = [("transformers 4.57 pipeline (baseline)", base_s, base_scores, peaks["float32"], base_out)]
    rows += [
        (f"hfapps.answer, {dtype}", seconds[dtype], scores[dtype], peaks[dtype], outputs[dtype]) for dtype in tasks
    ]
    for name, s, score, peak, out in rows:
        same = sum(o["answer"] == b["answer"] for o, b in zip(out, base_out)) / N
        same_span = sum((o["start"], o["end"]) == (b["start"], b["end"]) for o, b in zip(out, base_out)) / N
        print(
            f"{name:38s} {N / s:11.1f} {base_s / s:8.2f}x {score['exact_match']:6.1f} {score['f1']:6.1f} "
            f"{100 * flops / s / peak:9.0f}% {same:19.1%} {same_span:17.1%}"
        )


if __name__ == "__main__":
    main()
