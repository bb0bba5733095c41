"""Summarization and translation speed: hfapps against the transformers 4.57 pipelines users had.

    python benchmarks/bench_seq2seq.py

The 4.57 pipelines run in a virtual environment the benchmarks create (tf457.py). Both sides run the same model on
the same texts with the same settings: greedy decoding, inputs truncated to the model's 512 tokens, and exactly 32
new tokens per text (min = max), so both do the same work; the same batch size on both sides in each row (16, then
32, hfapps' default), the best of three runs each. The batch-16 rows also time hfapps without its packed CPU weights
(HFAPPS_PACK_WEIGHTS=0), to show what length-sorting and packing each give. The model has t5-small's published size
(60M parameters: 6+6 layers, d_model 512, d_ff 2048, 8 heads, vocabulary 32,128) with random weights, and a byte-
level BPE tokenizer trained on the workload's text (t5-small's own files are not reachable offline)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tf457  # noqa: E402
import torch  # noqa: E402

import hfapps  # noqa: E402

from common import CACHE, DATA, best_of, machine, need_data, peak_flops, seq2seq_flops  # noqa: E402

BATCH, NEW_TOKENS, REPEATS = 16, 32, 3
GENERATE = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "num_beams": 1, "do_sample": False}
#: The pipelines truncate a long text; hfapps summarizes it whole by default (map-reduce over chunks), which is
#: more work. The speed rows compare the same work.
TRUNCATE = {"long_input": "truncate"}


def documents(n: int) -> list[str]:
    with open(os.path.join(DATA, "summarization", "xsum_500.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line)["document"] for line in handle][:n]


def sentences(n: int) -> list[str]:
    with open(os.path.join(DATA, "translation", "newsdev2016.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line)["en"] for line in handle][:n]


def t5_small_sized(texts: list[str]) -> str:
    """A T5 with t5-small's dimensions and random weights, and a tokenizer trained on `texts`."""
    out = os.path.join(CACHE, "t5-small-sized")
    if os.path.isfile(os.path.join(out, "config.json")):
        return out
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=32000,
            special_tokens=["<pad>", "</s>", "<unk>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=512, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=32128,
        d_model=512,
        d_kv=64,
        d_ff=2048,
        num_layers=6,
        num_heads=8,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    T5ForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    # transformers 4.57 does not know the tokenizer class name transformers 5 writes; both read this one.
    path = os.path.join(out, "tokenizer_config.json")
    settings = json.load(open(path))
    settings["tokenizer_class"] = "PreTrainedTokenizerFast"
    json.dump(settings, open(path, "w"), indent=2)
    return out


def hfapps_task(task: str, model: str, packed: bool = True, **options):
    """hfapps' helper for `task`; `packed=False` loads it without packed weights, to show what they give."""
    os.environ["HFAPPS_PACK_WEIGHTS"] = "1" if packed else "0"
    try:
        return hfapps.load(task, model, progress=False, **options)
    finally:
        os.environ.pop("HFAPPS_PACK_WEIGHTS")


def main() -> None:
    need_data()
    small = "--small" in sys.argv  # a quick functional check, not a measurement
    docs, sents = (documents(8), sentences(8)) if small else (documents(48), sentences(96))
    repeats = 1 if small else REPEATS
    model = t5_small_sized(documents(500) + sentences(1999))
    peak = peak_flops(torch.float32)
    print(f"machine: {machine()}; peak matmul {peak / 1e9:.0f} GFLOP/s fp32")
    summarizer = hfapps_task("summarization", model, batch_size=BATCH)
    config = summarizer.pipeline.model.config
    source = {
        task: [min(len(ids), 512) for ids in summarizer.tokenizer(texts)["input_ids"]]
        for task, texts in (("summarization", docs), ("translation", sents))
    }
    texts = {"summarization": docs, "translation": sents}
    pipelines = {"summarization": "summarization", "translation": "translation_en_to_ro"}

    # (task, batch size on both sides, hfapps options); hfapps' own default batch size is 32.
    rows = [
        ("summarization", BATCH, {"batch_size": BATCH}),
        ("translation", BATCH, {"batch_size": BATCH}),
        ("translation", 32, {}),
    ]
    runs = [
        {
            "task": pipelines[task],
            "model": model,
            "inputs": texts[task],
            "repeats": repeats,
            "kwargs": {**GENERATE, "batch_size": batch, "truncation": True},
        }
        for task, batch, _ in rows
    ]
    runs.append({**runs[0], "repeats": 1, "kwargs": {**GENERATE, "batch_size": BATCH}})  # 4.57's default: no truncation
    base = tf457.run(runs)

    print(f"transformers {base['transformers']} in {tf457.VENV}; best of {repeats} runs on each side\n")
    print(
        f"{'task':14s} {'texts':>5s} {'tokens':>6s} {'batch':>5s} {'4.57 s':>7s} {'hfapps s':>9s} {'speed-up':>9s} "
        f"{'identical':>10s} {'% of peak 4.57 / hfapps':>24s}  {'hfapps unpacked s':>17s}"
    )
    seconds = 0.0
    for (task, batch, options), result in zip(rows, base["runs"]):
        helper = hfapps_task(task, model, **options)
        helper(texts[task][:2], **GENERATE, **TRUNCATE)
        ours, seconds = best_of(repeats, helper, texts[task], **GENERATE, **TRUNCATE)
        key = "summary_text" if task == "summarization" else "translation_text"
        same = sum(o[key] == b for o, b in zip(ours, result["outputs"])) / len(ours)
        flops = seq2seq_flops(config, source[task], NEW_TOKENS)
        unpacked = ""
        if batch == BATCH:  # the same helper without packed weights: what packing alone gives
            plain = hfapps_task(task, model, packed=False, **options)
            plain(texts[task][:2], **GENERATE, **TRUNCATE)
            unpacked = f"{best_of(repeats, plain, texts[task], **GENERATE, **TRUNCATE)[1]:17.1f}"
        print(
            f"{task:14s} {len(ours):5d} {sum(source[task]) / len(ours):6.0f} {batch:5d} {result['seconds']:7.1f} "
            f"{seconds:9.1f} {result['seconds'] / seconds:8.2f}x {same:10.1%} "
            f"{100 * flops / result['seconds'] / peak:15.0f}% / {100 * flops / seconds / peak:2.0f}%  {unpacked}"
        )
    translation_16 = base["runs"][1]["seconds"]
    print(
        f"\ntranslation, hfapps with its default batching (32) against the 4.57 pipeline at batch {BATCH}: "
        f"{translation_16:.1f} s / {seconds:.1f} s = {translation_16 / seconds:.2f}x"
    )
    long_docs = sum(1 for ids in summarizer.tokenizer(docs)["input_ids"] if len(ids) > 512)
    print(
        f"transformers 4.57 default (no truncation): {base['runs'][3]['seconds']:.1f} s for the same "
        f"{len(docs)} documents ({long_docs} of them over 512 tokens)"
    )
    print(
        "(source tokens: mean after truncation to 512; % of peak: useful FLOPs of encoding and "
        f"{NEW_TOKENS} decoding steps over the measured fp32 peak)"
    )


if __name__ == "__main__":
    main()
