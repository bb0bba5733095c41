"""Training speed: the recipe's dynamic padding and length grouping against the transformers examples'
default of padding every example to max_length (run_glue.py with pad_to_max_length).

    python benchmarks/bench_training.py

Same model (MiniLM-L6 + a new head), same 2,000 SST-2 sentences, same seed, learning rate, batch size and
epochs, one process. Prints real (non-padding) tokens per second, the ratio, and the final training loss.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer,  # noqa: E402
                          TrainingArguments, default_data_collator, set_seed)

from common import DATA, encoder_flops, machine, need_data, peak_flops, sst2  # noqa: E402
from hfapps import models  # noqa: E402
from hfapps.train import train  # noqa: E402

N, MAX_LENGTH, BATCH, LR, SEED = 2000, 128, 32, 1e-4, 42


def baseline(model_path: str, texts: list[str], labels: list[int], out: str) -> dict:
    """The transformers examples' way: pad every example to max_length, batches in random order."""
    set_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    data = Dataset.from_dict({"sentence": texts, "label": labels}).map(
        lambda b: tokenizer(b["sentence"], padding="max_length", max_length=MAX_LENGTH, truncation=True),
        batched=True, remove_columns=["sentence"])
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    args = TrainingArguments(output_dir=out, per_device_train_batch_size=BATCH, learning_rate=LR, num_train_epochs=1,
                             weight_decay=0.01, warmup_steps=0.06, seed=SEED, save_strategy="no", logging_steps=10,
                             report_to="none", use_cpu=True)
    result = Trainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator).train()
    return result.metrics


def main() -> None:
    need_data()
    ref, config = models.resolve("sentence-transformers/all-MiniLM-L6-v2")
    texts, labels = sst2("train", N)
    tokenizer = AutoTokenizer.from_pretrained(ref.path)
    lengths = [min(len(ids), MAX_LENGTH) for ids in tokenizer(texts)["input_ids"]]
    real_tokens, padded_tokens = sum(lengths), N * MAX_LENGTH
    peak = peak_flops(torch.float32)
    print(f"machine: {machine()}; peak matmul {peak / 1e9:.0f} GFLOP/s fp32")
    print(f"workload: {N} SST-2 sentences, {real_tokens} real tokens (mean {real_tokens / N:.1f}); "
          f"padded to {MAX_LENGTH}: {padded_tokens} tokens")
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline(ref.path, texts, labels, os.path.join(tmp, "baseline"))
        ours = train("sentiment", ["--dataset_name", "", "--train_file", os.path.join(DATA, "sst2", "train.tsv"),
                                   "--validation_file", os.path.join(DATA, "sst2", "dev.tsv"), "--max_train_samples",
                                   str(N), "--max_seq_length", str(MAX_LENGTH), "--learning_rate", str(LR),
                                   "--per_device_train_batch_size", str(BATCH), "--seed", str(SEED),
                                   "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end",
                                   "false", "--output_dir", os.path.join(tmp, "hfapps")])["train"]
    train_flops = 3 * encoder_flops(config, lengths)  # forward + backward = 3 x forward, on the real tokens
    print(f"\n{'':52s} {'seconds':>8s} {'real tokens/s':>14s} {'speed-up':>9s} {'final loss':>11s} {'% of peak':>10s}")
    for name, metrics in (("padding to max_length, random order (baseline)", base),
                          ("hfapps recipe: dynamic padding + length grouping", ours)):
        seconds = metrics["train_runtime"]
        print(f"{name:52s} {seconds:8.1f} {real_tokens / seconds:14.0f} {base['train_runtime'] / seconds:8.2f}x "
              f"{metrics['train_loss']:11.4f} {100 * train_flops / seconds / peak:9.0f}%")
    print("(% of peak counts only the useful FLOPs, on real tokens; padding is wasted work)")


if __name__ == "__main__":
    main()
