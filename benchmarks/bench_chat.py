"""The chat path: translation with SmolLM2-135M-Instruct (a causal chat model, the GGUF file the `demo` extra
ships) through hfapps.translate, against the transformers 4.57 text-generation pipeline given the same chat
messages.

    python benchmarks/bench_chat.py

Both sides: the same de-quantised float32 weights, the same prompts (hfapps' translation prompt, built once and
sent to both), left padding, batch 16, greedy decoding, exactly 32 new tokens per text, the best of three runs.
Prints texts/s, the ratio, identical outputs and the share of the measured fp32 peak.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tf457  # noqa: E402
import torch  # noqa: E402
from bench_seq2seq import sentences  # noqa: E402

import hfapps  # noqa: E402

from common import best_of, causal_lm_flops, machine, need_data, peak_flops  # noqa: E402

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
BATCH, NEW_TOKENS, REPEATS, N = 16, 32, 3, 48
GENERATE = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False}


OPTIONS = {"source": "en", "target": "fr"}


def baseline(translator, texts: list[str], repeats: int) -> tuple[list[int], float, dict]:
    """The 4.57 text-generation pipeline on the chat messages hfapps' translation prompt makes of `texts`: the
    prompts' token lengths, the workload's FLOPs, and tf457's report."""
    prompts = [translator._prompt(text, **OPTIONS) for text in texts]
    chats = [[{"role": "user", "content": prompt}] for prompt in prompts]
    lengths = [
        len(
            translator.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
        for chat in chats
    ]
    flops = causal_lm_flops(translator.chat.pipeline.model.config, lengths, NEW_TOKENS)
    ref = translator.ref
    base = tf457.run(
        [
            {
                "task": "text-generation",
                "model": ref.path,
                "gguf_file": ref.gguf_file,
                "inputs": chats,
                "repeats": repeats,
                "kwargs": {**GENERATE, "batch_size": BATCH, "return_full_text": False},
            }
        ]
    )
    return lengths, flops, base


def main() -> None:
    need_data()
    small = "--small" in sys.argv  # a quick functional check, not a measurement
    texts, repeats = (sentences(4), 1) if small else (sentences(N), REPEATS)
    peak = peak_flops(torch.float32)
    print(f"machine: {machine()}; peak matmul {peak / 1e9:.0f} GFLOP/s fp32")
    translator = hfapps.load("translation", MODEL, batch_size=BATCH, progress=False)
    lengths, flops, base = baseline(translator, texts, repeats)
    result = base["runs"][0]
    translator(texts[:2], **OPTIONS, **GENERATE)
    ours, seconds = best_of(repeats, translator, texts, **OPTIONS, **GENERATE)
    same = sum(o["translation_text"] == b for o, b in zip(ours, result["outputs"])) / len(texts)
    print(
        f"transformers {base['transformers']} in {tf457.VENV}; {len(texts)} WMT16 sentences, prompts of "
        f"{min(lengths)}-{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f}), best of {repeats}\n"
    )
    print(f"{'':44s} {'texts/s':>8s} {'speed-up':>9s} {'% of peak':>10s}")
    for name, s in (
        ("transformers 4.57 text-generation (baseline)", result["seconds"]),
        ("hfapps.translate, float32", seconds),
    ):
        print(f"{name:44s} {len(texts) / s:8.2f} {result['seconds'] / s:8.2f}x {100 * flops / s / peak:9.0f}%")
    print(f"identical outputs: {same:.1%}")
    print(f"example: {texts[0]!r}\n  4.57:   {result['outputs'][0]!r}\n  hfapps: {ours[0]['translation_text']!r}")


if __name__ == "__main__":
    main()
