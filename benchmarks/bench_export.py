"""Compression on the encoder tasks: ONNX Runtime (float32, int8) and distillation, against hfapps' own float32
PyTorch path and the plain transformers pipeline, with what each step costs in accuracy.

    python benchmarks/bench_export.py
    python benchmarks/bench_export.py --task int8_variants
    python benchmarks/bench_export.py --task int8_emulated --emulated_sentences 200
    python benchmarks/bench_export.py --task question_answering --qa_train_samples 3000 --qa_questions 1000

Classification: the sentiment teacher (MiniLM-L6 fine-tuned with the shipped recipe on 20,000 SST-2 sentences,
cached), exported by `hfapps export`, and a 3-layer student distilled from it with the shipped distill recipe (SST-2
files instead of the Hub). Speed on the mixed-length workload of bench_classification.py (SST-2 dev, AG News, SQuAD
contexts: 5 to 500+ tokens), the best of 3 rounds that each run every model in turn (`--rounds`); labels compared
with hfapps float32 on that workload; accuracy on all 872 SST-2 dev sentences. QA: bench_qa.py's model and 200 SQuAD
dev questions (windows 384, stride 128), EM/F1 against the gold answers; `--qa_train_samples 3000` trains a reader
that answers a third of them (about 11 minutes, once), `--qa_questions` scores more of the dev half. The share of
peak uses the machine's measured float32 matmul and int8 MatMulInteger peaks, in this run."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import pipeline  # noqa: E402

import hfapps  # noqa: E402
from hfapps import metrics  # noqa: E402
from hfapps.compress.export import export  # noqa: E402
from hfapps.runtimes.onnx import Int8  # noqa: E402

from common import (  # noqa: E402
    CACHE,
    ag_news,
    best_of,
    encoder_flops,
    mixed_texts,
    need_data,
    print_peaks,
    sst2,
    sst2_run,
    teacher_model,
    timed,
)

BATCH = 32


def student_model(teacher: str) -> str:
    """The shipped distill recipe on the SST-2 files (all 67,349 training sentences; cached)."""
    return sst2_run("distill", "sentiment-student", "--teacher", teacher)


def exported(model: str, quantize: str) -> str:
    out = os.path.join(CACHE, f"{os.path.basename(model)}-onnx-{quantize}")
    export(model, out, quantize=quantize, overwrite=True, measure=False)
    return out


def size_mb(path: str) -> float:
    files = [f for f in os.listdir(path) if f.endswith((".onnx", ".safetensors"))]
    return sum(os.path.getsize(os.path.join(path, f)) for f in files) / 1e6


def classification(peak32: float, peak8: float, rounds: int) -> None:
    teacher = teacher_model()
    student = student_model(teacher)
    texts = mixed_texts(sst2_n=300, ag_n=300, squad_n=200)
    dev, gold = sst2("dev")
    baseline = pipeline("text-classification", model=teacher, device="cpu")
    lengths = [min(len(ids), 512) for ids in baseline.tokenizer(texts)["input_ids"]]
    print(
        f"\nClassification: {len(texts)} mixed texts, {sum(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f}, "
        f"max {max(lengths)}); SST-2 dev: {len(dev)} sentences; the best of {rounds} interleaved rounds"
    )
    variants = [
        ("hfapps, PyTorch float32", teacher, peak32),
        ("hfapps, ONNX float32", exported(teacher, "none"), peak32),
        ("hfapps, ONNX int8", exported(teacher, "int8"), peak8),
        ("distilled 3 layers, PyTorch float32", student, peak32),
        ("distilled 3 layers, ONNX int8", exported(student, "int8"), peak8),
    ]
    runs = [("transformers pipeline, float32", lambda batch: baseline(batch, batch_size=BATCH, truncation=True))]
    runs += [(name, hfapps.load("sentiment", path, batch_size=BATCH, progress=False)) for name, path, _ in variants]
    outputs, seconds = {}, {name: float("inf") for name, _ in runs}
    for _, run in runs:
        run(texts[:8])  # warm-up
    for _ in range(rounds):  # every model once per round: a slow spell of the shared machine hits them all alike
        for name, run in runs:
            outputs[name], took = timed(run, texts)
            seconds[name] = min(seconds[name], took)
    base_s = seconds[runs[0][0]]
    print(
        f"{'':38s} {'texts/s':>8s} {'vs pipeline':>11s} {'vs hfapps fp32':>14s} {'labels = teacher fp32':>21s} "
        f"{'SST-2 acc':>9s} {'MB':>6s} {'% of peak':>9s}"
    )
    print(f"{runs[0][0]:38s} {len(texts) / base_s:8.1f} {1:10.2f}x")
    reference, reference_s, reference_dev = outputs[variants[0][0]], seconds[variants[0][0]], None
    for (name, path, peak), (_, task) in zip(variants, runs[1:]):
        on_dev = task(dev)
        reference_dev = reference_dev or on_dev
        accuracy = sum(p["label"] == ["NEGATIVE", "POSITIVE"][g] for p, g in zip(on_dev, gold)) / len(dev)
        same = sum(a["label"] == b["label"] for a, b in zip(outputs[name], reference)) / len(texts)
        same_dev = sum(a["label"] == b["label"] for a, b in zip(on_dev, reference_dev)) / len(dev)
        flops = encoder_flops(task.config, lengths)
        print(
            f"{name:38s} {len(texts) / seconds[name]:8.1f} {base_s / seconds[name]:10.2f}x "
            f"{reference_s / seconds[name]:13.2f}x {same:9.2%} ({same_dev:6.2%} dev) {accuracy:9.4f} "
            f"{size_mb(path):6.1f} {100 * flops / seconds[name] / peak:8.0f}%"
        )


#: The int8 variants measured against each other: (name, how the file is quantized, u8 x u8 products at load).
#: "u8 x u8" is ONNX Runtime's session.x64quantprecision: on x86 CPUs without VNNI it replaces the u8 x s8 kernels,
#: whose 16-bit pair sums saturate, by exact ones; hfapps sets it on those CPUs (`runtimes/onnx.session_options`).
INT8_VARIANTS = [
    ("dynamic QInt8 per channel", Int8(static=False), False),
    ("dynamic, reduce_range", Int8(static=False, reduce_range=True), False),
    ("dynamic, QUInt8 weights", Int8(static=False, weights="QUInt8"), False),
    ("dynamic, u8 x u8 at load", Int8(static=False), True),
    ("static QDQ, 1 of 6 down-proj. fp32", Int8(float_down=0.0), False),
    ("static QDQ, 2 of 6 down-proj. fp32", Int8(float_down=1 / 3), False),
    ("static QDQ, 6 of 6 down-proj. fp32", Int8(float_down=1.0), False),
    ("static QDQ, 3 of 6 (shipped)", Int8(), False),
    ("static QDQ, 3 of 6, u8 x u8 at load", Int8(), True),
]


def load_onnx(path: str, precise: bool):
    """The sentiment helper on an ONNX export, with u8 x u8 products on or off whatever this CPU would choose."""
    from hfapps.runtimes import onnx as onnx_runtime

    chosen = onnx_runtime.session_options
    onnx_runtime.session_options = lambda ort, _=None: chosen(ort, precise)  # type: ignore[assignment]
    try:
        return hfapps.load("sentiment", path, batch_size=BATCH, progress=False)
    finally:
        onnx_runtime.session_options = chosen  # type: ignore[assignment]


def batch_shift(task, reviews: list[str], longer: list[str]) -> tuple[float, int]:
    """How far a review's POSITIVE probability moves, at most, between being scored alone and in one padded batch
    with `longer` texts; and how many labels change."""
    import torch

    def probabilities(texts: list[str]) -> torch.Tensor:
        encoded = task.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            return task.pipeline.model(**encoded).logits.softmax(-1)[:, -1]

    alone = torch.cat([probabilities([review]) for review in reviews])
    together = probabilities(reviews + longer)[: len(reviews)]
    return float((alone - together).abs().max()), int(((alone > 0.5) != (together > 0.5)).sum())


def int8_variants(rounds: int) -> None:
    """Every int8 variant of the teacher on this CPU: labels against float32, SST-2 dev accuracy, speed against hfapps
    float32 on the mixed workload, and whether a text's result depends on its batch."""
    from hfapps.cpu import cpu

    teacher = teacher_model()
    texts = mixed_texts(sst2_n=300, ag_n=300, squad_n=200)
    dev, gold = sst2("dev")
    reviews, longer = dev[-40:], ag_news(20)  # held out: the teacher never trained on SST-2 dev
    print(
        f"\nint8 variants of the teacher on this CPU ({cpu().int8_kernels}; hfapps turns u8 x u8 on here: "
        f"{'yes' if cpu().int8_saturates else 'no'}); {len(texts)} mixed texts, best of {rounds} rounds; batch shift: "
        f"{len(reviews)} reviews scored alone and in one batch with {len(longer)} news articles"
    )
    runs = [("hfapps, PyTorch float32", hfapps.load("sentiment", teacher, batch_size=BATCH, progress=False))]
    for name, settings, precise in INT8_VARIANTS:
        out = os.path.join(
            CACHE,
            f"teacher-int8-{'static' if settings.static else 'dynamic'}-{settings.weights}"
            f"{'-rr' if settings.reduce_range else ''}-down{settings.float_down}",
        )
        export(teacher, out, quantize="int8", overwrite=True, measure=False, int8=settings)
        runs.append((name, load_onnx(out, precise)))
    outputs, seconds = {}, {name: float("inf") for name, _ in runs}
    for _, task in runs:
        task(texts[:8])
    for _ in range(rounds):
        for name, task in runs:
            outputs[name], took = timed(task, texts)
            seconds[name] = min(seconds[name], took)
    reference, reference_dev = outputs[runs[0][0]], runs[0][1](dev)
    print(
        f"{'':32s} {'texts/s':>8s} {'vs fp32':>8s} {'labels = fp32':>14s} {'(SST-2 dev)':>11s} {'SST-2 acc':>9s} "
        f"{'batch shift':>11s} {'flips':>5s}"
    )
    for name, task in runs:
        on_dev = task(dev)
        accuracy = sum(p["label"] == ["NEGATIVE", "POSITIVE"][g] for p, g in zip(on_dev, gold)) / len(dev)
        same = sum(a["label"] == b["label"] for a, b in zip(outputs[name], reference)) / len(texts)
        same_dev = sum(a["label"] == b["label"] for a, b in zip(on_dev, reference_dev)) / len(dev)
        shift, flips = batch_shift(task, reviews, longer)
        print(
            f"{name:32s} {len(texts) / seconds[name]:8.1f} {seconds[runs[0][0]] / seconds[name]:7.2f}x "
            f"{same:14.2%} {same_dev:11.2%} {accuracy:9.4f} {shift:11.4f} {flips:5d}"
        )


#: Runs in a separate process, natively or under QEMU: the ONNX Runtime sessions as hfapps opens them on the CPU
#: that process sees, and with the fast u8 x s8 kernels forced; SST-2 dev's POSITIVE probabilities from each.
EMULATED_WORKER = """
import json, sys, numpy, onnxruntime
from hfapps.cpu import cpu
from hfapps.runtimes.onnx import session_options
feeds, models, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
batches = numpy.load(feeds, allow_pickle=True)["batches"]
results = {"cpu": cpu().describe(), "saturates": cpu().int8_saturates}
for name, path in models.items():
    for precise in (None, False):
        session = onnxruntime.InferenceSession(path + "/model.onnx", session_options(onnxruntime, precise))
        wanted = [i.name for i in session.get_inputs()]
        probs = []
        for batch in batches:
            logits = session.run(["logits"], {k: batch[k] for k in wanted})[0]
            probs += (numpy.exp(logits[:, 1]) / numpy.exp(logits).sum(1)).tolist()
        results[f"{name}|{'hfapps' if precise is None else 'fast u8 x s8'}"] = probs
json.dump(results, open(out, "w"))
"""


def int8_on_an_emulated_zen2(limit: int) -> None:
    """The teacher's int8 exports on SST-2 dev, run on this CPU and on QEMU's emulation of an AMD EPYC Rome (Zen 2:
    AVX2, no AVX-512, no VNNI), where ONNX Runtime picks its AVX2 kernels: labels against float32, with the kernels
    hfapps picks on each CPU and with the fast u8 x s8 ones forced. Emulation is slow: agreement, not speed."""
    import json
    import shutil
    import subprocess
    import tempfile

    import numpy as np

    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        print("\nskipped the emulated Zen 2: qemu-x86_64 is not installed (Debian: apt-get install qemu-user)")
        return
    teacher = teacher_model()
    dev, gold = sst2("dev")
    dev, gold = dev[:limit], gold[:limit]
    float32 = hfapps.load("sentiment", teacher, progress=False)(dev)
    reference = [r["label"] for r in float32]
    positive = [r["score"] if r["label"] == "POSITIVE" else 1 - r["score"] for r in float32]
    models = {}
    for name, settings in (("static (shipped)", Int8()), ("dynamic (before)", Int8(static=False))):
        models[name] = os.path.join(CACHE, f"teacher-int8-emulated-{'static' if settings.static else 'dynamic'}")
        export(teacher, models[name], quantize="int8", overwrite=True, measure=False, int8=settings)
    tokenizer = hfapps.load("sentiment", teacher, progress=False).tokenizer
    batches = [
        dict(tokenizer(dev[i : i + 32], padding=True, truncation=True, return_tensors="np"))
        for i in range(0, len(dev), 32)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(os.path.join(tmp, "feeds.npz"), batches=np.array(batches, dtype=object))
        runs = {}
        for where, prefix in (("this CPU", []), ("emulated Zen 2", [qemu, "-cpu", "EPYC-Rome"])):
            out = os.path.join(tmp, f"{len(runs)}.json")
            subprocess.run(
                [
                    *prefix,
                    sys.executable,
                    "-c",
                    EMULATED_WORKER,
                    os.path.join(tmp, "feeds.npz"),
                    json.dumps(models),
                    out,
                ],
                check=True,
                stderr=subprocess.DEVNULL,
            )
            runs[where] = json.load(open(out))
    print(f"\nint8 on an emulated AVX2-only CPU: {limit} SST-2 dev sentences, labels against the teacher's float32")
    for where, result in runs.items():
        print(f"  {where}: {result['cpu']}")
    print(f"{'':46s} {'labels = fp32':>13s} {'SST-2 acc':>9s} {'mean |p - p fp32|':>17s}")
    for where, result in runs.items():
        for key, probs in result.items():
            if "|" not in key:
                continue
            labels = ["POSITIVE" if p > 0.5 else "NEGATIVE" for p in probs]
            same = sum(a == b for a, b in zip(labels, reference)) / len(labels)
            accuracy = sum(label == ["NEGATIVE", "POSITIVE"][g] for label, g in zip(labels, gold)) / len(labels)
            gap = sum(abs(p - q) for p, q in zip(probs, positive)) / len(probs)
            name, kernels = key.split("|")
            print(f"{where + ', ' + name + ', ' + kernels:46s} {same:13.2%} {accuracy:9.4f} {gap:17.4f}")


def question_answering(train_samples: int, n: int) -> None:
    from bench_qa import qa_model, workload

    model = qa_model(train_samples)
    questions, contexts, gold = workload(n)
    N = len(questions)
    options = {"max_seq_len": 384, "doc_stride": 128}
    squad = metrics.load("squad")
    print(
        f"\nQuestion answering: MiniLM-L6 after one epoch on {train_samples} SQuAD questions; {N} SQuAD dev "
        "questions, windows of 384 tokens, stride 128"
    )
    print(
        f"{'':24s} {'questions/s':>11s} {'vs hfapps fp32':>14s} {'EM':>6s} {'F1':>6s} {'answers = fp32':>14s} "
        f"{'MB':>6s}"
    )
    reference, reference_s = None, None
    for name, path in (("hfapps, PyTorch float32", model), ("hfapps, ONNX int8", exported(model, "int8"))):
        task = hfapps.load("question-answering", path, batch_size=16, progress=False)
        task(question=questions[:2], context=contexts[:2], **options)
        out, seconds = best_of(2, task, question=questions, context=contexts, **options)
        if reference is None:
            reference, reference_s = out, seconds
        scores = squad.compute(predictions=[o["answer"] for o in out], references=gold)
        same = sum(a["answer"] == b["answer"] for a, b in zip(out, reference)) / N
        print(
            f"{name:24s} {N / seconds:11.1f} {reference_s / seconds:13.2f}x {scores['exact_match']:6.1f} "
            f"{scores['f1']:6.1f} {same:14.1%} {size_mb(path):6.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--task",
        choices=("all", "classification", "int8_variants", "int8_emulated", "question_answering"),
        default="all",
    )
    parser.add_argument("--emulated_sentences", type=int, default=872, help="SST-2 dev sentences run under QEMU")
    parser.add_argument("--qa_train_samples", type=int, default=800, help="SQuAD questions the QA reader learns from")
    parser.add_argument("--qa_questions", type=int, default=200, help="SQuAD dev questions scored")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of the classification models")
    args = parser.parse_args()
    need_data()
    if args.task in ("all", "classification"):
        peak32, peak8 = print_peaks()
        classification(peak32, peak8, args.rounds)
    if args.task in ("all", "int8_variants"):
        if args.task == "int8_variants":
            print_peaks()
        int8_variants(args.rounds)
    if args.task in ("all", "int8_emulated"):
        int8_on_an_emulated_zen2(args.emulated_sentences)
    if args.task in ("all", "question_answering"):
        question_answering(args.qa_train_samples, args.qa_questions)


if __name__ == "__main__":
    main()
