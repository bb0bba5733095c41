"""Embedding speed: `hfapps.embed` against sentence-transformers' `SentenceTransformer.encode`, same model (the
packaged all-MiniLM-L6-v2), same 2,000 mixed-length texts (SQuAD dev paragraphs and questions, shuffled), same
batch size (32), same process, float32, with the vectors compared (cosine of every text) and the share of the CPU's
float32 matmul peak each reaches (measured in the same run). The model's int8 ONNX export (`hfapps export MODEL
OUT --quantize int8`, made at the start) runs in the same rounds: its speed against both, its cosine to hfapps'
float32 vectors, and its cost in recall on the SQuAD retrieval benchmark (exact cosine search, both embedders).

    python benchmarks/bench_embed.py
    python benchmarks/bench_embed.py --texts 400 --rounds 1 --recall_questions 500     # a quick check that it runs
    python benchmarks/bench_embed.py --products     # only MiniLM's three product shapes, plain against oneDNN-fused

The speed figures are only meaningful on an idle machine: run it with nothing else running.
"""

import argparse
import json
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hfapps.models import packaged_model_path  # noqa: E402
from hfapps.retrieval.helpers import embed  # noqa: E402

from common import DATA, best_of, encoder_flops, machine, need_data, peak_flops  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BATCH = 32


def squad_texts(n: int, seed: int = 0) -> list[str]:
    """Paragraphs (100-300 tokens) and questions (10-20 tokens) of the SQuAD dev half, half and half, shuffled."""
    with open(os.path.join(DATA, "squad", "dev-v1.1-first-half.json"), encoding="utf-8") as f:
        articles = json.load(f)["data"]
    paragraphs = [p for a in articles for p in a["paragraphs"]]
    questions = [q["question"] for p in paragraphs for q in p["qas"]]
    rng = random.Random(seed)
    texts = [p["context"] for p in paragraphs][: n // 2] + rng.sample(questions, n - min(n // 2, len(paragraphs)))
    rng.shuffle(texts)
    return texts


def int8_export(path: str, folder: str) -> str:
    """The packaged model exported as `hfapps export MODEL FOLDER --quantize int8` writes it (default calibration)."""
    from hfapps.compress.export import export

    export(path, folder, quantize="int8", measure=False)
    return folder


def recall_cost(float_model: str, int8_model: str, questions_n: int | None) -> dict[str, dict]:
    """Recall@1/10 and MRR@10 of exact cosine search over the SQuAD dev half's 1,048 paragraphs (the retrieval
    benchmark's corpus and questions, `bench_retrieval.squad`), with each embedder: the int8 export's cost in
    retrieval, free of any approximate index's own misses."""
    from bench_retrieval import TEST_FILE, scores, squad

    documents, questions, relevant = squad(TEST_FILE)
    if questions_n is not None:
        questions, relevant = questions[:questions_n], relevant[:questions_n]
    ids = np.array([d["id"] for d in documents])
    found = {}
    for name, model in (("float32", float_model), ("int8", int8_model)):
        corpus = embed([d["text"] for d in documents], model=model, batch_size=BATCH)
        queries = embed(questions, model=model, batch_size=BATCH)
        top = np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :100]
        found[name] = scores([list(ids[row]) for row in top], relevant)
    return found


def products(rows: int = 8160) -> None:
    """MiniLM-L6's three product shapes on `rows` rows (a batch of 32 paragraphs of 255 tokens): plain layers (the
    384-to-1,536 one is BERT's intermediate block, its GELU included) against the same layers fused by hfapps
    (`hfapps/inference/onednn.py`), best of 8, in milliseconds."""
    import copy

    from torch import nn
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertIntermediate

    from hfapps.inference import onednn

    print(f"machine: {machine()}; torch threads {torch.get_num_threads()}")
    print("| product | plain ms | fused ms | speed-up |\n| --- | --- | --- | --- |")
    shapes = (
        ("384 to 384", nn.Linear(384, 384), 384),
        ("384 to 1,536 + GELU", BertIntermediate(BertConfig(hidden_size=384, intermediate_size=1536)), 384),
        ("1,536 to 384", nn.Linear(1536, 384), 1536),
    )
    for name, plain, width in shapes:
        fused = copy.deepcopy(plain)
        onednn.fuse_linear_layers(fused)
        x = torch.randn(rows, width)
        with torch.inference_mode():
            torch.testing.assert_close(fused(x), plain(x), rtol=1e-4, atol=1e-4)
            _, plain_s = best_of(8, plain, x)
            _, fused_s = best_of(8, fused, x)
        print(f"| {name} | {plain_s * 1000:.1f} | {fused_s * 1000:.1f} | {plain_s / fused_s:.2f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="best of N rounds, each running all three in turn")
    parser.add_argument("--recall_questions", type=int, default=None, help="SQuAD questions for recall (all: 5,696)")
    parser.add_argument("--products", action="store_true", help="only time the product shapes, plain and fused")
    args = parser.parse_args()
    if args.products:
        products()
        return
    need_data()
    from sentence_transformers import SentenceTransformer

    path = packaged_model_path(MODEL).path
    texts = squad_texts(args.texts)
    st = SentenceTransformer(path, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        int8 = int8_export(path, os.path.join(tmp, "int8"))
        embed(texts[:64], batch_size=BATCH)  # load and warm all three up
        embed(texts[:64], model=int8, batch_size=BATCH)
        st.encode(texts[:64], batch_size=BATCH)
        peak = peak_flops(torch.float32)
        ours_s = int8_s = theirs_s = float("inf")
        for _ in range(args.rounds):  # interleaved, so that a busy spell hits all three alike
            ours, seconds = best_of(1, embed, texts, batch_size=BATCH)
            ours_s = min(ours_s, seconds)
            quantized, seconds = best_of(1, embed, texts, model=int8, batch_size=BATCH)
            int8_s = min(int8_s, seconds)
            theirs, seconds = best_of(1, st.encode, texts, batch_size=BATCH)
            theirs_s = min(theirs_s, seconds)
        report_speed(texts, st, peak, (ours, ours_s), (quantized, int8_s), (theirs, theirs_s))
        recall = recall_cost(path, int8, args.recall_questions)
    questions = args.recall_questions or "all 5,696"
    print(f"\nExact cosine search, SQuAD dev half (1,048 paragraphs, {questions} questions)\n")
    print("| embedder | recall@1 | recall@10 | MRR@10 |\n| --- | --- | --- | --- |")
    for name, s in recall.items():
        print(f"| {name} | {s['recall@1']:.3f} | {s['recall@10']:.3f} | {s['mrr@10']:.3f} |")
    cost = recall["float32"]["recall@10"] - recall["int8"]["recall@10"]
    print(f"\nint8's recall@10 cost: {100 * cost:.1f} points")


def report_speed(texts: list[str], st, peak: float, float32: tuple, int8: tuple, baseline: tuple) -> None:
    """The speed table: texts/s, share of the float32 peak, speed-ups, and the vectors' cosines."""
    (ours, ours_s), (quantized, int8_s), (theirs, theirs_s) = float32, int8, baseline
    cosine = cosines(ours, theirs)
    int8_cosine = cosines(quantized, ours)
    lengths = [min(len(ids), 256) for ids in st.tokenizer(texts)["input_ids"]]
    flops = encoder_flops(st[0].auto_model.config, lengths)
    print(
        f"machine: {machine()}; float32 matmul peak {peak / 1e9:.0f} GFLOP/s; torch threads {torch.get_num_threads()}"
    )
    print(f"{len(texts)} texts, {sum(lengths)} tokens (mean {np.mean(lengths):.0f}, max {max(lengths)}), batch {BATCH}")
    print("| embedder | texts/s | share of float32 peak | speed-up | cosine to float32 (min / mean) |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| SentenceTransformer.encode | {len(texts) / theirs_s:.1f} | {flops / theirs_s / peak:.1%} | 1.00x | 1 |")
    print(
        f"| hfapps.embed | {len(texts) / ours_s:.1f} | {flops / ours_s / peak:.1%} | {theirs_s / ours_s:.2f}x "
        f"| {cosine.min():.6f} / {cosine.mean():.6f} (to encode) |"
    )
    print(
        f"| hfapps.embed, int8 ONNX export | {len(texts) / int8_s:.1f} | {flops / int8_s / peak:.1%} "
        f"| {theirs_s / int8_s:.2f}x ({ours_s / int8_s:.2f}x hfapps float32) "
        f"| {int8_cosine.min():.4f} / {int8_cosine.mean():.4f} (to hfapps.embed) |",
        flush=True,
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


if __name__ == "__main__":
    main()
