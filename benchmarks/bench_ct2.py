"""CTranslate2 exports (`hfapps export --format ctranslate2`) against the transformers 4.57 pipelines users had.

    python benchmarks/bench_ct2.py [--seq2seq | --chat]
    python benchmarks/bench_ct2.py --precision
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/bench_ct2.py --precision

Seq2seq: bench_seq2seq.py's workloads and model (t5-small's size, random weights, a tokenizer trained on the
text): 48 XSum documents to summarize and 96 WMT16 sentences to translate, batch 16 on both sides, greedy,
exactly 32 new tokens per text. Chat: bench_chat.py's workload (SmolLM2-135M-Instruct from the `demo` extra's
GGUF file, hfapps' translation prompt, 48 sentences, batch 16, exactly 32 new tokens), plus the time to load the
model: the GGUF file de-quantized by transformers against the CTranslate2 export. Best of 3 runs each; the
4.57 pipelines run in the virtual environment tf457.py creates. Identical outputs are counted against the 4.57
pipeline's (random weights make near-ties common, so float32 itself is not always 100%).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


import bench_chat as chat_baseline  # noqa: E402
import tf457  # noqa: E402
from bench_chat import MODEL as CHAT_MODEL  # noqa: E402
from bench_seq2seq import TRUNCATE, documents, sentences, t5_small_sized  # noqa: E402

import hfapps  # noqa: E402
from hfapps.compress.export import export  # noqa: E402

from common import CACHE, best_of, machine, need_data, print_peaks, seq2seq_flops  # noqa: E402

BATCH, NEW_TOKENS, REPEATS = 16, 32, 3
GENERATE = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "num_beams": 1, "do_sample": False}


def exported(model: str, name: str, quantize: str) -> tuple[str, float]:
    out = os.path.join(CACHE, f"{name}-ct2-{quantize}")
    start = time.perf_counter()
    export(model, out, format="ctranslate2", quantize=quantize, overwrite=True, measure=False)
    return out, time.perf_counter() - start


def row(name: str, seconds: float, base_s: float, n: int, same: float, flops: float, peak: float) -> None:
    print(f"{name:40s} {n / seconds:8.2f} {base_s / seconds:8.2f}x {same:10.1%} {100 * flops / seconds / peak:9.1f}%")


def seq2seq(peak32: float, peak8: float) -> None:
    docs, sents = documents(48), sentences(96)
    model = t5_small_sized(documents(500) + sentences(1999))
    texts = {"summarization": docs, "translation": sents}
    pipelines = {"summarization": "summarization", "translation": "translation_en_to_ro"}
    base = tf457.run(
        [
            {
                "task": pipelines[task],
                "model": model,
                "inputs": texts[task],
                "repeats": REPEATS,
                "kwargs": {**GENERATE, "batch_size": BATCH, "truncation": True},
            }
            for task in texts
        ]
    )
    variants = [
        (f"hfapps, CTranslate2 {label}", exported(model, "t5-small-sized", q)[0], peak)
        for label, q, peak in (("float32", "none", peak32), ("int8", "int8", peak8))
    ]
    print(
        f"\nSeq2seq, t5-small-sized, transformers {base['transformers']} baseline; batch {BATCH}, "
        f"{NEW_TOKENS} new tokens"
    )
    print(f"{'':40s} {'texts/s':>8s} {'speed-up':>9s} {'identical':>10s} {'% of peak':>10s}")
    for (task, inputs), result in zip(texts.items(), base["runs"]):
        helper = hfapps.load(task, model, batch_size=BATCH, progress=False)
        source = [min(len(ids), 512) for ids in helper.tokenizer(inputs)["input_ids"]]
        flops = seq2seq_flops(helper.config, source, NEW_TOKENS)
        key = "summary_text" if task == "summarization" else "translation_text"
        print(f"{task}: {len(inputs)} texts, mean {sum(source) / len(source):.0f} source tokens")
        row(
            "  transformers 4.57 pipeline (baseline)",
            result["seconds"],
            result["seconds"],
            len(inputs),
            1.0,
            flops,
            peak32,
        )
        default_batching = ("hfapps, CTranslate2 int8, batch 32 (default)", variants[1][1], peak8, 32)
        for name, path, peak, batch in [
            ("hfapps, PyTorch float32", model, peak32, BATCH),
            *[(*variant, BATCH) for variant in variants],
            default_batching,
        ]:
            task_model = hfapps.load(task, path, batch_size=batch, progress=False)
            task_model(inputs[:2], **GENERATE, **TRUNCATE)
            ours, seconds = best_of(REPEATS, task_model, inputs, **GENERATE, **TRUNCATE)
            same = sum(o[key] == b for o, b in zip(ours, result["outputs"])) / len(inputs)
            row(f"  {name}", seconds, result["seconds"], len(inputs), same, flops, peak)


def chat(peak32: float, peak8: float) -> None:
    texts = sentences(48)
    options = chat_baseline.OPTIONS
    start = time.perf_counter()
    translator = hfapps.load("translation", CHAT_MODEL, batch_size=BATCH, progress=False)
    gguf_load = time.perf_counter() - start
    lengths, flops, base = chat_baseline.baseline(translator, texts, REPEATS)
    result = base["runs"][0]
    print(
        f"\nChat: {CHAT_MODEL} (GGUF Q4_1 file), translation prompts of {min(lengths)}-{max(lengths)} tokens, "
        f"batch {BATCH}, {NEW_TOKENS} new tokens; transformers {base['transformers']} baseline"
    )
    print(f"{'':40s} {'texts/s':>8s} {'speed-up':>9s} {'identical':>10s} {'% of peak':>10s} {'load s':>7s}")
    row("transformers 4.57 text-generation", result["seconds"], result["seconds"], len(texts), 1.0, flops, peak32)
    del translator
    hfapps.clear_cache()
    for label, quantize, peak in (("float32", "none", peak32), ("int8", "int8", peak8)):
        path, export_s = exported(CHAT_MODEL, "smollm2", quantize)
        start = time.perf_counter()
        helper = hfapps.load("translation", path, batch_size=BATCH, progress=False)
        load_s = time.perf_counter() - start
        helper(texts[:2], **options, **GENERATE)
        ours, seconds = best_of(REPEATS, helper, texts, **options, **GENERATE)
        same = sum(o["translation_text"] == b for o, b in zip(ours, result["outputs"])) / len(texts)
        row(f"hfapps, CTranslate2 {label}", seconds, result["seconds"], len(texts), same, flops, peak)
        print(
            f"{'':40s} load {load_s:.1f} s (the GGUF file, de-quantized: {gguf_load:.1f} s); export took "
            f"{export_s:.0f} s once"
        )
        if label == "int8":
            print(
                f"example: {texts[0]!r}\n  4.57:      {result['outputs'][0]!r}\n  ct2 int8:  "
                f"{ours[0]['translation_text']!r}"
            )


def ct2_outputs(path: str, sources: list[list[str]], chat: bool) -> list[tuple[list[str], float]]:
    """CTranslate2 itself on an export's own files, as written (compute type "default", whatever hfapps would choose
    on this CPU): greedy, exactly NEW_TOKENS new tokens per input; (tokens, log-probability per token) each."""
    import ctranslate2

    folder = os.path.join(path, "ctranslate2")
    options = {"beam_size": 1, "return_scores": True, "max_batch_size": BATCH}
    if chat:
        engine = ctranslate2.Generator(folder, compute_type="default")
        results = engine.generate_batch(
            sources, max_length=NEW_TOKENS, min_length=NEW_TOKENS, include_prompt_in_result=False, **options
        )
        return [(r.sequences[0], r.scores[0] / max(1, len(r.sequences[0]))) for r in results]
    engine = ctranslate2.Translator(folder, compute_type="default")
    results = engine.translate_batch(sources, max_decoding_length=NEW_TOKENS, min_decoding_length=NEW_TOKENS, **options)
    return [(r.hypotheses[0], r.scores[0]) for r in results]


def precision() -> None:
    """int8 against CTranslate2's own float32 on the three workloads above, on this CPU's kernels: the share of
    outputs identical token for token, how many of their first tokens are (the mean length of the common start), and
    the outputs' mean log-probability per token (CTranslate2's score). It
    runs oneDNN on AMD CPUs, and ONEDNN_MAX_CPU_ISA=AVX2 makes it run the AVX2 kernels of a CPU without VNNI (whose
    u8 x s8 products sum pairs in 16 bits) on any x86 CPU."""
    from transformers import AutoTokenizer

    t5 = t5_small_sized(documents(500) + sentences(1999))
    tokenizer = AutoTokenizer.from_pretrained(t5)

    def encoded(texts: list[str]) -> list[list[str]]:
        return [
            tokenizer.convert_ids_to_tokens(ids)
            for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"]
        ]

    translator = hfapps.load("translation", CHAT_MODEL, progress=False)  # for its prompt and chat template
    prompts = [
        translator.tokenizer.apply_chat_template(
            [{"role": "user", "content": translator._prompt(text, **chat_baseline.OPTIONS)}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
        for text in sentences(48)
    ]
    workloads = [
        (
            "summarization (t5-small-sized)",
            t5,
            "t5-small-sized",
            encoded(["summarize: " + d for d in documents(48)]),
            False,
        ),
        (
            "translation (t5-small-sized)",
            t5,
            "t5-small-sized",
            encoded(["translate English to Romanian: " + s for s in sentences(96)]),
            False,
        ),
        (
            "chat (SmolLM2, translation prompt)",
            CHAT_MODEL,
            "smollm2",
            [translator.tokenizer.convert_ids_to_tokens(ids) for ids in prompts],
            True,
        ),
    ]
    del translator
    hfapps.clear_cache()
    print(
        f"\nCTranslate2 int8 against its own float32 ({os.environ.get('ONEDNN_MAX_CPU_ISA') or 'oneDNN picks'} "
        f"kernels); greedy, {NEW_TOKENS} new tokens"
    )
    print(f"{'':36s} {'identical':>10s} {'same first tokens':>17s} {'log-prob/token fp32':>20s} {'int8':>8s}")
    for label, model, name, sources, chat in workloads:
        outputs = {}
        for quantize in ("none", "int8"):
            path = os.path.join(CACHE, f"{name}-ct2-{quantize}")
            if not os.path.isfile(os.path.join(path, "hfapps.json")):
                exported(model, name, quantize)
            outputs[quantize] = ct2_outputs(path, sources, chat)
        same = sum(a[0] == b[0] for a, b in zip(outputs["none"], outputs["int8"])) / len(sources)
        prefix = sum(
            next((i for i, (x, y) in enumerate(zip(a[0], b[0])) if x != y), min(len(a[0]), len(b[0])))
            for a, b in zip(outputs["none"], outputs["int8"])
        ) / len(sources)
        mean = {q: sum(score for _, score in out) / len(out) for q, out in outputs.items()}
        print(f"{label:36s} {same:10.1%} {prefix:17.1f} {mean['none']:20.3f} {mean['int8']:8.3f}")


def main() -> None:
    need_data()
    if "--precision" in sys.argv:
        print(machine())
        precision()
        return
    peak32, peak8 = print_peaks()  # CTranslate2 runs its own int8 kernels; ONNX Runtime's peak is the yardstick
    if "--chat" not in sys.argv:
        seq2seq(peak32, peak8)
    if "--seq2seq" not in sys.argv:
        chat(peak32, peak8)


if __name__ == "__main__":
    main()
