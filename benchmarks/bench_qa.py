"""Extractive QA speed: hfapps.answer against the transformers 4.57 question-answering pipeline.

    python benchmarks/bench_qa.py

The 4.57 pipeline runs in the virtual environment bench_seq2seq.py creates (benchmarks/.cache/venv-tf457).
Model: MiniLM-L6 fine-tuned for one epoch on the first 800 questions of the SQuAD train subset (cached).
Workload: the first 200 questions of the SQuAD dev half with their contexts. Both sides: windows of 384
tokens, stride 128, batch 16. Prints questions/s, the ratio, identical answers, and EM/F1 against the gold
answers for both.
"""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hfapps  # noqa: E402
from bench_seq2seq import baseline_env  # noqa: E402
from common import CACHE, DATA, HERE, machine, need_data, timed  # noqa: E402
from hfapps import metrics  # noqa: E402

BATCH, N = 16, 200


def qa_model() -> str:
    out = os.path.join(CACHE, "minilm-squad")
    if not os.path.isfile(os.path.join(out, "hfapps.json")):
        from hfapps.train import train

        train("question_answering", ["--dataset_name", "", "--train_file",
                                     os.path.join(DATA, "squad", "train-v1.1-subset.json"), "--max_train_samples",
                                     "800", "--max_seq_length", "256", "--doc_stride", "96", "--output_dir", out,
                                     "--overwrite", "true", "--eval_strategy", "no", "--save_strategy", "no",
                                     "--validation_split_percentage", "5"])
    return out


def workload() -> tuple[list[str], list[str], list[list[str]]]:
    with open(os.path.join(DATA, "squad", "dev-v1.1-first-half.json"), encoding="utf-8") as handle:
        articles = json.load(handle)["data"]
    rows = [(qa["question"], p["context"], [a["text"] for a in qa["answers"]])
            for a in articles for p in a["paragraphs"] for qa in p["qas"]][:N]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def main() -> None:
    need_data()
    model = qa_model()
    questions, contexts, gold = workload()
    python = baseline_env()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        job, result = os.path.join(tmp, "job.json"), os.path.join(tmp, "result.json")
        json.dump({"model": model, "questions": questions, "contexts": contexts, "batch_size": BATCH}, open(job, "w"))
        subprocess.run([python, os.path.join(HERE, "baseline_tf457_qa.py"), job, result], check=True,
                       env={**os.environ, "PYTHONPATH": ""}, capture_output=True)
        base = json.load(open(result))
    # The model was trained with 256-token windows; both sides read with the 4.57 defaults (384, stride 128).
    task = hfapps.load("question-answering", model, batch_size=BATCH, progress=False)
    options = {"max_seq_len": 384, "doc_stride": 128}
    task(question=questions[:2], context=contexts[:2], **options)
    ours, seconds = timed(task, question=questions, context=contexts, **options)
    squad = metrics.load("squad")
    base_scores = squad.compute(predictions=base["answers"], references=gold)
    our_scores = squad.compute(predictions=[o["answer"] for o in ours], references=gold)
    same = sum(o["answer"] == b for o, b in zip(ours, base["answers"])) / N
    same_span = sum([o["start"], o["end"]] == s for o, s in zip(ours, base["spans"])) / N
    print(f"transformers {base['transformers']} in the baseline environment; {N} questions\n")
    print(f"{'':36s} {'questions/s':>11s} {'speed-up':>9s} {'EM':>6s} {'F1':>6s}")
    print(f"{'transformers 4.57 pipeline (baseline)':36s} {N / base['seconds']:11.1f} {1:8.2f}x "
          f"{base_scores['exact_match']:6.1f} {base_scores['f1']:6.1f}")
    print(f"{'hfapps.answer, float32':36s} {N / seconds:11.1f} {base['seconds'] / seconds:8.2f}x "
          f"{our_scores['exact_match']:6.1f} {our_scores['f1']:6.1f}")
    print(f"identical answers: {same:.1%} (identical character spans: {same_span:.1%})")


if __name__ == "__main__":
    main()
