"""Embedding speed: `hfapps.embed` against sentence-transformers' `SentenceTransformer.encode`, same model (the
packaged all-MiniLM-L6-v2), same 2,000 mixed-length texts (SQuAD dev paragraphs and questions, shuffled), same
batch size (32), same process, float32, with the vectors compared (cosine of every text) and the share of the CPU's
float32 matmul peak each reaches (measured in the same run).

    python benchmarks/bench_embed.py
    python benchmarks/bench_embed.py --texts 400 --rounds 1      # a quick check that it runs

The speed figures are only meaningful on an idle machine: run it with nothing else running.
"""

import argparse
import json
import os
import random
import sys

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="best of N rounds, each running both in turn")
    args = parser.parse_args()
    need_data()
    from sentence_transformers import SentenceTransformer

    path = packaged_model_path(MODEL).path
    texts = squad_texts(args.texts)
    st = SentenceTransformer(path, device="cpu")
    embed(texts[:64], batch_size=BATCH)  # load and warm both up
    st.encode(texts[:64], batch_size=BATCH)
    peak = peak_flops(torch.float32)
    ours, ours_s = float("inf"), float("inf")
    theirs, theirs_s = None, float("inf")
    for _ in range(args.rounds):
        ours, seconds = best_of(1, embed, texts, batch_size=BATCH)
        ours_s = min(ours_s, seconds)
        theirs, seconds = best_of(1, st.encode, texts, batch_size=BATCH)
        theirs_s = min(theirs_s, seconds)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    lengths = [min(len(ids), 256) for ids in st.tokenizer(texts)["input_ids"]]
    flops = encoder_flops(st[0].auto_model.config, lengths)
    print(
        f"machine: {machine()}; float32 matmul peak {peak / 1e9:.0f} GFLOP/s; torch threads {torch.get_num_threads()}"
    )
    print(f"{len(texts)} texts, {sum(lengths)} tokens (mean {np.mean(lengths):.0f}, max {max(lengths)}), batch {BATCH}")
    print("| embedder | texts/s | share of float32 peak | speed-up | min cosine to encode |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| SentenceTransformer.encode | {len(texts) / theirs_s:.1f} | {flops / theirs_s / peak:.1%} | 1.00x | 1 |")
    print(
        f"| hfapps.embed | {len(texts) / ours_s:.1f} | {flops / ours_s / peak:.1%} | {theirs_s / ours_s:.2f}x "
        f"| {cosine.min():.6f} |"
    )


if __name__ == "__main__":
    main()
