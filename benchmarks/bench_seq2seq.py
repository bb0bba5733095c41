"""Summarization and translation speed: hfapps against the transformers 4.57 pipelines users had.

    python benchmarks/bench_seq2seq.py

The 4.57 pipelines run in a virtual environment this script creates (benchmarks/.cache/venv-tf457: torch
2.13.0 and transformers 4.57.6 from the package registry). Both sides run the same model on the same texts
with the same settings: greedy decoding, inputs truncated to the model's 512 tokens, and exactly 32 new tokens
per text (min = max), so both do the same work. The model has t5-small's published size (60M parameters:
6+6 layers, d_model 512, d_ff 2048, 8 heads, vocabulary 32,128) with random weights, and a byte-level BPE
tokenizer trained on the workload's text (t5-small's own files are not reachable offline).
"""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

import hfapps  # noqa: E402
from common import CACHE, DATA, HERE, machine, need_data, peak_flops, timed  # noqa: E402

VENV = os.path.join(CACHE, "venv-tf457")
BATCH, NEW_TOKENS = 16, 32
GENERATE = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "num_beams": 1, "do_sample": False}


def baseline_env() -> str:
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(os.path.join(VENV, ".ready")):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, "transformers==4.57.6", "sentencepiece"], check=True)
        open(os.path.join(VENV, ".ready"), "w").close()
    return python


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
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=32000, special_tokens=["<pad>", "</s>", "<unk>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, pad_token="<pad>",
                                        eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    config = T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    T5ForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    # transformers 4.57 does not know the tokenizer class name transformers 5 writes; both read this one.
    path = os.path.join(out, "tokenizer_config.json")
    settings = json.load(open(path))
    settings["tokenizer_class"] = "PreTrainedTokenizerFast"
    json.dump(settings, open(path, "w"), indent=2)
    return out


def run_baseline(python: str, task: str, model: str, texts: list[str], truncation: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        job, result = os.path.join(tmp, "job.json"), os.path.join(tmp, "result.json")
        json.dump({"task": task, "model": model, "inputs": texts, "batch_size": BATCH, "generate": GENERATE,
                   "truncation": truncation}, open(job, "w"))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
        subprocess.run([python, os.path.join(HERE, "baseline_tf457.py"), job, result], check=True, env=env,
                       capture_output=True)
        return json.load(open(result))


def main() -> None:
    need_data()
    small = "--small" in sys.argv  # a quick functional check, not a measurement
    docs, sents = (documents(8), sentences(8)) if small else (documents(48), sentences(96))
    model = t5_small_sized(documents(500) + sentences(1999))
    python = baseline_env()
    peak = peak_flops(torch.float32)
    print(f"machine: {machine()}; peak matmul {peak / 1e9:.0f} GFLOP/s fp32")
    summarizer = hfapps.load("summarization", model, batch_size=BATCH, progress=False)
    translator = hfapps.load("translation", model, batch_size=BATCH, progress=False)
    rows = []
    for task, texts, helper, base_task in (("summarization", docs, summarizer, "summarization"),
                                           ("translation", sents, translator, "translation_en_to_ro")):
        key = "summary_text" if task == "summarization" else "translation_text"
        tokens = [min(len(ids), 512) for ids in summarizer.tokenizer(texts)["input_ids"]]
        base = run_baseline(python, base_task, model, texts, truncation=True)
        helper(texts[:2], **GENERATE)
        ours, seconds = timed(helper, texts, **GENERATE)
        same = sum(o[key] == b for o, b in zip(ours, base["outputs"])) / len(texts)
        rows.append((task, len(texts), sum(tokens) / len(tokens), base["seconds"], seconds, same))
        if task == "summarization":
            untruncated = run_baseline(python, base_task, model, texts, truncation=False)
            long_docs = sum(1 for n in summarizer.tokenizer(texts)["input_ids"] if len(n) > 512)
            note = (f"transformers 4.57 default (no truncation): {untruncated['seconds']:.1f} s for the same "
                    f"documents ({long_docs} of them over 512 tokens)")
    print(f"transformers {base['transformers']} in {VENV}\n")
    print(f"{'task':14s} {'texts':>5s} {'mean tokens':>11s} {'4.57 s':>7s} {'hfapps s':>9s} {'speed-up':>9s} "
          f"{'identical outputs':>18s}")
    for task, n, mean, base_s, ours_s, same in rows:
        print(f"{task:14s} {n:5d} {mean:11.0f} {base_s:7.1f} {ours_s:9.1f} {base_s / ours_s:8.2f}x {same:17.1%}")
    print(note)


if __name__ == "__main__":
    main()
