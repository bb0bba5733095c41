"""Training speed: the recipe's dynamic padding and length grouping against the transformers examples'
default of padding every example to max_length (run_glue.py with pad_to_max_length).

    python benchmarks/bench_training.py

Same model (MiniLM-L6 + a new head), same 1,000 SST-2 sentences, learning rate, batch size and epochs, one
process, three seeds on each side. Prints, per run, the time, real (non-padding) tokens per second, the final
training loss, and the loss and accuracy on the SST-2 dev set (measured the same way for both); then the
means and standard deviations, so that "the same loss" can be judged against seed-to-seed noise.
"""

import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    Trainer,
    TrainingArguments,
    default_data_collator,
    set_seed,
)

from hfapps import models  # noqa: E402
from hfapps.training.runner import train  # noqa: E402

from common import DATA, encoder_flops, machine, need_data, peak_flops, sst2  # noqa: E402

N, MAX_LENGTH, BATCH, LR, SEEDS = 1000, 128, 32, 1e-4, (42, 43, 44)


def baseline(model_path: str, texts: list[str], labels: list[int], out: str, seed: int) -> dict:
    """The transformers examples' way: pad every example to max_length, batches in random order."""
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    data = Dataset.from_dict({"sentence": texts, "label": labels}).map(
        lambda b: tokenizer(b["sentence"], padding="max_length", max_length=MAX_LENGTH, truncation=True),
        batched=True,
        remove_columns=["sentence"],
    )
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        num_train_epochs=1,
        weight_decay=0.01,
        warmup_steps=0.06,
        seed=seed,
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        use_cpu=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator)
    metrics = trainer.train().metrics
    trainer.save_model(out)
    tokenizer.save_pretrained(out)
    return metrics


def recipe(out: str, seed: int) -> dict:
    """hfapps' sentiment recipe with the same settings."""
    return train(
        "sentiment",
        [
            "--dataset_name",
            "",
            "--train_file",
            os.path.join(DATA, "sst2", "train.tsv"),
            "--validation_file",
            os.path.join(DATA, "sst2", "dev.tsv"),
            "--max_train_samples",
            str(N),
            "--max_seq_length",
            str(MAX_LENGTH),
            "--learning_rate",
            str(LR),
            "--per_device_train_batch_size",
            str(BATCH),
            "--seed",
            str(seed),
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--load_best_model_at_end",
            "false",
            "--output_dir",
            out,
        ],
    )["train"]


def dev_scores(model_dir: str) -> tuple[float, float]:
    """Cross-entropy loss and accuracy on the 872 SST-2 dev sentences, computed the same way for every model."""
    texts, labels = sst2("dev")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    # Class 0 is SST-2's negative on both sides (hfapps names it NEGATIVE, the baseline LABEL_0).
    assert model.config.id2label[0] in ("NEGATIVE", "LABEL_0"), model.config.id2label
    loss, correct = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            batch = tokenizer(
                texts[start : start + 64], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
            )
            gold = torch.tensor(labels[start : start + 64])
            logits = model(**batch).logits
            loss += torch.nn.functional.cross_entropy(logits, gold, reduction="sum").item()
            correct += (logits.argmax(-1) == gold).sum().item()
    return loss / len(texts), correct / len(texts)


def spread(values: list[float], fmt: str) -> str:
    return f"{statistics.mean(values):{fmt}} ± {statistics.stdev(values):{fmt}}"


def main() -> None:
    need_data()
    ref, config = models.resolve("sentence-transformers/all-MiniLM-L6-v2")
    texts, labels = sst2("train", N)
    tokenizer = AutoTokenizer.from_pretrained(ref.path)
    lengths = [min(len(ids), MAX_LENGTH) for ids in tokenizer(texts)["input_ids"]]
    real_tokens, padded_tokens = sum(lengths), N * MAX_LENGTH
    peak = peak_flops(torch.float32)
    train_flops = 3 * encoder_flops(config, lengths)  # forward + backward = 3 x forward, on the real tokens
    print(f"machine: {machine()}; peak matmul {peak / 1e9:.0f} GFLOP/s fp32")
    print(
        f"workload: {N} SST-2 sentences, {real_tokens} real tokens (mean {real_tokens / N:.1f}); "
        f"padded to {MAX_LENGTH}: {padded_tokens} tokens; seeds {', '.join(map(str, SEEDS))}"
    )
    runs = {
        "padding to max_length, random order (baseline)": [],
        "hfapps recipe: dynamic padding + length grouping": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for seed in SEEDS:
            fits = (
                lambda out, seed=seed: baseline(ref.path, texts, labels, out, seed),
                lambda out, seed=seed: recipe(out, seed),
            )
            for name, fit in zip(runs, fits):
                out = os.path.join(tmp, f"{len(runs[name])}-{seed}-{'hfapps' if 'hfapps' in name else 'base'}")
                metrics = fit(out)
                runs[name].append((metrics["train_runtime"], metrics["train_loss"], *dev_scores(out)))
    print(
        f"\n{'':50s} {'seed':>4s} {'seconds':>8s} {'real tokens/s':>14s} {'train loss':>11s} {'dev loss':>9s} "
        f"{'dev acc':>8s}"
    )
    for name, results in runs.items():
        for seed, (seconds, train_loss, dev_loss, dev_acc) in zip(SEEDS, results):
            print(
                f"{name:50s} {seed:4d} {seconds:8.1f} {real_tokens / seconds:14.0f} {train_loss:11.4f} "
                f"{dev_loss:9.4f} {dev_acc:8.3f}"
            )
    (base_name, base), (ours_name, ours) = runs.items()
    base_s, ours_s = statistics.mean(r[0] for r in base), statistics.mean(r[0] for r in ours)
    print(
        f"\n{'mean ± sd over seeds':50s} {'seconds':>14s} {'speed-up':>9s} {'train loss':>16s} {'dev loss':>16s} "
        f"{'dev acc':>14s} {'% of peak':>10s}"
    )
    for name, results in runs.items():
        seconds = [r[0] for r in results]
        print(
            f"{name:50s} {spread(seconds, '6.1f'):>14s} {base_s / statistics.mean(seconds):8.2f}x "
            f"{spread([r[1] for r in results], '.4f'):>16s} {spread([r[2] for r in results], '.4f'):>16s} "
            f"{spread([r[3] for r in results], '.3f'):>14s} "
            f"{100 * train_flops / statistics.mean(seconds) / peak:9.0f}%"
        )
    print(
        f"(speed-up {base_s / ours_s:.2f}x in real tokens/s; % of peak counts only the useful FLOPs, on real "
        "tokens: padding is wasted work)"
    )


if __name__ == "__main__":
    main()
