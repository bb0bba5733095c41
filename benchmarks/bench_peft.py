"""LoRA against full fine-tuning, for the sentiment recipe on this machine.

    python benchmarks/bench_peft.py [--max_train_samples 6000] [--lora "--peft lora --learning_rate 1e-3"]

Both sides run the shipped sentiment recipe on the SST-2 train file (the same sentences, seed, batch size and
epochs), each in its own process so that its peak memory (max RSS) is its own. Full fine-tuning keeps the
recipe's learning rate (1e-4); LoRA (r 8 on query and value, plus the new head) takes 1e-3, as adapters need a
larger one. Prints trainable parameters, peak memory, time per step, the whole run's time and SST-2 dev
accuracy (scored by the helper on the saved folder), with the LoRA/full ratios.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import DATA, machine, need_data  # noqa: E402

CHILD = """
import json, resource, sys
from hfapps.training.runner import train
metrics = train("sentiment", sys.argv[2:])
out = sys.argv[1]
run = json.load(open(out + "/run.json"))
result = {"accuracy": metrics["validation"]["accuracy"], "runtime": metrics["train"]["train_runtime"],
          "steps": run["global_step"], "parameters": run["parameters"], "trainable": run["trainable_parameters"],
          "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print("RESULT " + json.dumps(result))
"""


def run(out: str, samples: int, *extra: str) -> dict:
    args = [
        "--dataset_name",
        "",
        "--train_file",
        os.path.join(DATA, "sst2", "train.tsv"),
        "--validation_file",
        os.path.join(DATA, "sst2", "dev.tsv"),
        "--max_train_samples",
        str(samples),
        "--save_strategy",
        "no",
        "--eval_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--output_dir",
        out,
        "--overwrite",
        "true",
        *extra,
    ]
    done = subprocess.run([sys.executable, "-c", CHILD, out, *args], capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"training failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_train_samples", type=int, default=6000)
    parser.add_argument(
        "--lora", default="--peft lora --learning_rate 1e-3", help="the LoRA side's recipe keys (default: %(default)s)"
    )
    args = parser.parse_args()
    need_data()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        full = run(os.path.join(tmp, "full"), args.max_train_samples)
        lora = run(os.path.join(tmp, "lora"), args.max_train_samples, *args.lora.split())
    print(f"sentiment recipe, {args.max_train_samples} SST-2 sentences, 1 epoch; accuracy on the 872 dev sentences")
    print(f"{'':14s} {'trainable':>12s} {'peak RSS MB':>12s} {'s/step':>8s} {'train s':>8s} {'dev acc':>8s}")
    print(f"LoRA side: {args.lora}")
    for name, r in (("full", full), ("LoRA", lora)):
        print(
            f"{name:14s} {r['trainable']:>12,d} {r['max_rss_mb']:>12.0f} {r['runtime'] / r['steps']:>8.3f} "
            f"{r['runtime']:>8.1f} {r['accuracy']:>8.4f}"
        )
    print(
        f"LoRA / full: trainable {lora['trainable'] / full['trainable']:.2%} of "
        f"{full['parameters']:,d} parameters, peak memory {lora['max_rss_mb'] / full['max_rss_mb']:.2f}x, "
        f"time per step {lora['runtime'] / lora['steps'] / (full['runtime'] / full['steps']):.2f}x, "
        f"accuracy {100 * (lora['accuracy'] - full['accuracy']):+.1f} points"
    )


if __name__ == "__main__":
    main()
