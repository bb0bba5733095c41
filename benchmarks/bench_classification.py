"""Classification speed: hfapps.classify against transformers 5's text-classification pipeline.

    python benchmarks/bench_classification.py            (make bench runs every benchmark)

Same model (MiniLM-L6 fine-tuned on SST-2), same texts (SST-2 dev + AG News + SQuAD contexts, 5 to 500+
tokens), same batch size, one process. Prints texts/s, the ratio, label agreement and the share of the
machine's measured peak matmul FLOP/s.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import pipeline  # noqa: E402

import hfapps  # noqa: E402

from common import encoder_flops, mixed_texts, need_data, print_float_peaks, sentiment_model, timed  # noqa: E402

BATCH = 32


def main() -> None:
    need_data()
    model = sentiment_model()
    texts = mixed_texts(sst2_n=300, ag_n=300, squad_n=200)
    baseline = pipeline("text-classification", model=model, device="cpu")
    lengths = [min(len(ids), 512) for ids in baseline.tokenizer(texts)["input_ids"]]
    flops = encoder_flops(baseline.model.config, lengths)
    peaks = print_float_peaks()
    peak32 = peaks["float32"]
    print(
        f"workload: {len(texts)} texts, {sum(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f}, "
        f"max {max(lengths)}), {flops / 1e12:.2f} TFLOP"
    )

    baseline(texts[:8], batch_size=BATCH, truncation=True)  # warm-up, both sides
    base, base_s = timed(baseline, texts, batch_size=BATCH, truncation=True)
    rows = [("transformers pipeline, float32 (baseline)", base, base_s, peak32)]
    for dtype, peak in peaks.items():
        task = hfapps.load("classification", model, device="cpu", dtype=dtype, batch_size=BATCH, progress=False)
        task(texts[:8])
        out, seconds = timed(task, texts)
        rows.append((f"hfapps, {dtype}", out, seconds, peak))

    print(f"\n{'':44s} {'texts/s':>8s} {'speed-up':>9s} {'labels = baseline':>18s} {'% of peak':>10s}")
    for name, out, seconds, peak in rows:
        agree = sum(a["label"] == b["label"] for a, b in zip(out, base)) / len(texts)
        print(
            f"{name:44s} {len(texts) / seconds:8.1f} {base_s / seconds:8.2f}x {agree:17.2%} "
            f"{100 * flops / seconds / peak:9.0f}%"
        )


if __name__ == "__main__":
    main()
