"""One pass of the sentiment recipe over SST-2, with one change at a time: what else was tried for 0.90.

    python benchmarks/bench_sst2_variants.py --variants shipped,fork_soup --seeds 42 --threads 1

Every variant is MiniLM-L6 trained once over all 67,349 SST-2 training sentences with the shipped sentiment
recipe's settings (learning rate 1e-4, linear decay after a 6% warm-up, batches of 32 grouped by length,
max_length 64, fused AdamW, weight decay 0.01), in a plain `Trainer` so that one thing can be changed:

- shipped: nothing (the baseline every other variant is read against);
- token_budget: batches of up to 512 tokens, as many sentences as fit, instead of 32 sentences;
- length_weighted: each sentence's loss weighted by its number of tokens;
- curriculum: the same length-grouped batches, visited from the shortest to the longest;
- pooler_identity: BERT's pooler layer (all-MiniLM-L6-v2 never trained it) starts as the identity;
- detok50: half the training sentences with SST-2's tokenized spacing undone ("does n't" -> "doesn't");
- fork_soup: one run to `--fork_at` of the epoch, then `--branches` copies that each anneal the learning rate to 0
  on their share of the rest (every other sentence, with `--branch_data split`) and the average of the
  branches' weights (a "model soup"); the same number of steps as one pass. A loop of its own, not `Trainer`.

Prints, for each run: SST-2 dev accuracy and log-loss, accuracy on hfapps' 609 sample reviews (which no run
sees), training minutes. With several seeds, also the ensemble of the seeds' runs (their averaged
probabilities: that many times the compute). Runs of the same seed and threads repeat exactly; the harness
behind benchmarks/RESULTS.md's table ran two at a time, `--threads 1` each, on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)

import hfapps  # noqa: E402
from hfapps import models  # noqa: E402

from common import CACHE, machine, need_data, peak_flops, sst2  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LR, BATCH, WARMUP, MAX_LENGTH, WEIGHT_DECAY, TOKEN_BUDGET = 1e-4, 32, 0.06, 64, 0.01, 512
TRAINER_VARIANTS = ("shipped", "token_budget", "length_weighted", "curriculum", "pooler_identity", "detok50")
VARIANTS = TRAINER_VARIANTS + ("fork_soup",)


def detokenize(text: str) -> str:
    """Undo SST-2's Penn-Treebank spacing: "it does n't work , sadly ." -> "It doesn't work, sadly."."""
    text = text.strip().replace("-lrb-", "(").replace("-rrb-", ")").replace("`` ", '"').replace(" ''", '"')
    text = text.replace("` ", "'")
    text = re.sub(r" n't\b", "n't", text)
    text = re.sub(r" '(s|re|ve|ll|d|m)\b", r"'\1", text)
    text = re.sub(r" ([,.!?;:%)])", r"\1", text)
    text = re.sub(r"\( ", "(", text).replace("$ ", "$").replace(" ' ", "' ")
    return text[:1].upper() + text[1:]


def sample_reviews() -> tuple[list[str], np.ndarray]:
    path = os.path.join(os.path.dirname(hfapps.__file__), "sample_data", "sentiment.csv")
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], np.array([r["label"] == "POSITIVE" for r in rows])


def length_grouped(indices, lengths: list[int], rng: random.Random, size: int = BATCH) -> list[list[int]]:
    """Shuffled, cut into megabatches of 50 batches, each sorted longest first and cut into batches (as
    transformers' LengthGroupedSampler does)."""
    indices = list(indices)
    rng.shuffle(indices)
    batches = []
    for start in range(0, len(indices), 50 * size):
        chunk = sorted(indices[start : start + 50 * size], key=lambda i: -lengths[i])
        batches += [chunk[j : j + size] for j in range(0, len(chunk), size)]
    return batches


def token_budget_batches(lengths: list[int], rng: random.Random, mega: int = 3200) -> list[list[int]]:
    """Shuffled, cut into megabatches of 3,200 sentences, each sorted longest first and cut into batches of at
    most TOKEN_BUDGET padded tokens; the batches in shuffled order."""
    indices = list(range(len(lengths)))
    rng.shuffle(indices)
    batches: list[list[int]] = []
    for start in range(0, len(indices), mega):
        current: list[int] = []
        longest = 0
        for i in sorted(indices[start : start + mega], key=lambda i: -lengths[i]):
            longest = max(longest, lengths[i])
            if current and longest * (len(current) + 1) > TOKEN_BUDGET:
                batches.append(current)
                current, longest = [], lengths[i]
            current.append(i)
        batches.append(current)
    rng.shuffle(batches)
    return batches


def curriculum_batches(lengths: list[int], rng: random.Random, jitter: float = 4.0) -> list[list[int]]:
    batches = length_grouped(range(len(lengths)), lengths, rng)
    keys = [max(lengths[i] for i in b) + rng.uniform(0, jitter) for b in batches]
    return [b for _, b in sorted(zip(keys, batches), key=lambda kb: kb[0])]


class FixedBatches(torch.utils.data.Sampler):
    def __init__(self, batches: list[list[int]]):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


class VariantTrainer(Trainer):
    """`Trainer` with the variant's batches (when it has its own) and its loss weighting."""

    def __init__(self, *args, batches=None, length_weighted=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches, self.length_weighted = batches, length_weighted

    def get_train_dataloader(self):
        if self.batches is None:
            return super().get_train_dataloader()
        data = self._remove_unused_columns(self.train_dataset, description="train")
        return self.accelerator.prepare(
            torch.utils.data.DataLoader(data, batch_sampler=FixedBatches(self.batches), collate_fn=self.data_collator)
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.length_weighted:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        losses = torch.nn.functional.cross_entropy(outputs.logits, labels, reduction="none")
        weights = inputs["attention_mask"].sum(-1).float()
        loss = (losses * weights).sum() / weights.sum()
        return (loss, outputs) if return_outputs else loss


class Data:
    def __init__(self, path: str):
        self.train_x, self.train_y = sst2("train")
        self.dev_x, self.dev_y = sst2("dev")
        self.reviews, self.review_labels = sample_reviews()
        self.tokenizer = AutoTokenizer.from_pretrained(path)

    @torch.inference_mode()
    def probabilities(self, model, texts: list[str], size: int = 64) -> np.ndarray:
        model.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros(len(texts))
        for start in range(0, len(order), size):
            ids = order[start : start + size]
            batch = self.tokenizer(
                [texts[i] for i in ids], truncation=True, max_length=512, padding=True, return_tensors="pt"
            )
            out[ids] = model(**batch).logits.softmax(-1)[:, 1].numpy()
        model.train()
        return out

    def scores(self, dev: np.ndarray, reviews: np.ndarray) -> dict:
        y = np.array(self.dev_y)
        return {
            "dev": float(((dev > 0.5) == y).mean()),
            "logloss": float(-np.mean(np.log(np.where(y == 1, dev, 1 - dev) + 1e-9))),
            "reviews": float(((reviews > 0.5) == self.review_labels).mean()),
        }

    def evaluate(self, model) -> tuple[dict, tuple[np.ndarray, np.ndarray]]:
        probs = self.probabilities(model, self.dev_x), self.probabilities(model, self.reviews)
        return self.scores(*probs), probs


def trainer_run(variant: str, seed: int, path: str, data: Data) -> tuple[dict, tuple]:
    texts = data.train_x
    if variant == "detok50":
        rng = random.Random(seed)
        texts = [detokenize(t) if rng.random() < 0.5 else t for t in texts]
    set_seed(seed)
    encoded = data.tokenizer(texts, truncation=True, max_length=MAX_LENGTH)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    dataset = Dataset.from_dict({**encoded, "labels": data.train_y})
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    if variant == "pooler_identity":
        with torch.no_grad():
            dense = model.bert.pooler.dense
            dense.weight.copy_(torch.eye(dense.weight.shape[0]))
            dense.bias.zero_()
    batches = {
        "token_budget": lambda: token_budget_batches(lengths, random.Random(seed)),
        "curriculum": lambda: curriculum_batches(lengths, random.Random(seed)),
    }.get(variant, lambda: None)()
    args = TrainingArguments(
        output_dir=os.path.join(CACHE, "sst2-variants", f"{variant}-{seed}"),
        learning_rate=LR,
        per_device_train_batch_size=BATCH,
        num_train_epochs=1,
        warmup_steps=WARMUP,
        weight_decay=WEIGHT_DECAY,
        optim="adamw_torch_fused",
        lr_scheduler_type="linear",
        train_sampling_strategy="group_by_length" if batches is None else "random",
        logging_steps=200,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=seed,
        use_cpu=True,
        disable_tqdm=True,
        average_tokens_across_devices=False,
    )
    trainer = VariantTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=data.tokenizer,
        data_collator=DataCollatorWithPadding(data.tokenizer),
        batches=batches,
        length_weighted=variant == "length_weighted",
    )
    start = time.perf_counter()
    trainer.train()
    minutes = (time.perf_counter() - start) / 60
    scores, probs = data.evaluate(model)
    return {**scores, "minutes": minutes, "steps": trainer.state.global_step}, probs


def fork_soup_run(seed: int, path: str, data: Data, fork_at: float, branches: int, split: bool):
    """The trunk to `fork_at` of one pass on the recipe's schedule, then `branches` branches each annealing from
    the trunk's learning rate to 0 over their share of the rest; returns the soup's scores (and each branch's
    and their ensemble's, printed)."""
    set_seed(seed)
    encoded = data.tokenizer(data.train_x, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    lengths = [len(ids) for ids in encoded]
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    def optimizer_for(m):
        no_decay = [p for n, p in m.named_parameters() if "bias" in n or "LayerNorm" in n]
        decay = [p for n, p in m.named_parameters() if not ("bias" in n or "LayerNorm" in n)]
        return torch.optim.AdamW(
            [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
            lr=LR,
            fused=True,
        )

    def train_on(batches, optimizer, lr_at) -> None:
        model.train()
        for step, batch in enumerate(batches):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            ids = torch.zeros(len(batch), max(lengths[i] for i in batch), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, i in enumerate(batch):
                ids[row, : lengths[i]] = torch.tensor(encoded[i])
                mask[row, : lengths[i]] = 1
            labels = torch.tensor([data.train_y[i] for i in batch])
            torch.nn.functional.cross_entropy(model(input_ids=ids, attention_mask=mask).logits, labels).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    batches = length_grouped(range(len(encoded)), lengths, random.Random(seed))
    total, warm, fork = len(batches), math.ceil(WARMUP * len(batches)), int(fork_at * len(batches))

    def schedule(step: int) -> float:
        return LR * (step / warm if step < warm else max(0.0, (total - step) / (total - warm)))

    start = time.perf_counter()
    optimizer = optimizer_for(model)
    train_on(batches[:fork], optimizer, schedule)
    trunk, trunk_optimizer = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    rest, lr_at_fork = [i for b in batches[fork:] for i in b], schedule(fork)
    states, branch_probs, train_seconds, steps = [], [], time.perf_counter() - start, fork
    for k in range(branches):
        start = time.perf_counter()
        model.load_state_dict(trunk)
        optimizer = optimizer_for(model)
        optimizer.load_state_dict(trunk_optimizer)
        torch.manual_seed(seed * 1000 + k)
        share = rest[k::branches] if split else rest
        own = length_grouped(share, lengths, random.Random(seed * 1000 + k))
        train_on(own, optimizer, lambda step, n=len(own): lr_at_fork * (n - step) / n)  # noqa: B008 (bound now)
        steps += len(own)
        train_seconds += time.perf_counter() - start
        states.append(copy.deepcopy(model.state_dict()))
        scores, probs = data.evaluate(model)
        branch_probs.append(probs)
        report(f"  branch {k + 1}", scores)
    report("  ensemble of the branches", data.scores(*(np.mean(p, axis=0) for p in zip(*branch_probs))))
    model.load_state_dict(
        {
            name: sum(s[name].float() for s in states) / len(states)
            if states[0][name].is_floating_point()
            else states[0][name]
            for name in states[0]
        }
    )
    scores, probs = data.evaluate(model)
    return {**scores, "minutes": train_seconds / 60, "steps": steps}, probs


def report(name: str, scores: dict) -> None:
    extra = f", {scores['minutes']:.1f} min of training ({scores['steps']} steps)" if "minutes" in scores else ""
    print(
        f"{name:34s} dev {scores['dev']:.4f} (log-loss {scores['logloss']:.4f}), sample reviews "
        f"{scores['reviews']:.4f}{extra}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="shipped,fork_soup", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="42", help="comma-separated")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--fork_at", type=float, default=0.5, help="fork_soup: where the branches start (0-1)")
    parser.add_argument("--branches", type=int, default=2, help="fork_soup: how many branches")
    parser.add_argument(
        "--branch_data",
        choices=["split", "full"],
        default="split",
        help="fork_soup: each branch on its share of the rest, or each on all of it",
    )
    args = parser.parse_args()
    variants, seeds = args.variants.split(","), [int(s) for s in args.seeds.split(",")]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}: choose from {', '.join(VARIANTS)}")
    need_data()
    torch.set_num_threads(args.threads)
    path = models.resolve(MODEL)[0].path
    print(f"machine: {machine()}; peak {peak_flops(torch.float32) / 1e9:.0f} GFLOP/s float32 matmul")
    data = Data(path)
    for variant in variants:
        runs = []
        for seed in seeds:
            if variant == "fork_soup":
                label = f"fork_soup at {args.fork_at}, {args.branches} branches ({args.branch_data})"
                scores, probs = fork_soup_run(
                    seed, path, data, args.fork_at, args.branches, args.branch_data == "split"
                )
            else:
                label = variant
                scores, probs = trainer_run(variant, seed, path, data)
            report(f"{label}, seed {seed}", scores)
            runs.append(probs)
        if len(runs) > 1:
            report(
                f"{variant}, ensemble of the {len(runs)} seeds", data.scores(*(np.mean(p, axis=0) for p in zip(*runs)))
            )


if __name__ == "__main__":
    main()
