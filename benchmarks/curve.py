"""A run's score against the minutes it had trained, from its log_history.json.

    python benchmarks/curve.py runs/sentiment [--metric eval_accuracy]

Each evaluation's score, with the time since training began (the `elapsed_seconds` that `hfapps train` adds to
every log entry; evaluation time included) and the epoch.
"""

import argparse
import json
import os


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", help="a `hfapps train` output folder")
    parser.add_argument("--metric", default="eval_accuracy")
    args = parser.parse_args()
    with open(os.path.join(args.run, "log_history.json"), encoding="utf-8") as handle:
        history = json.load(handle)
    print(f"{'minutes':>8s} {'epoch':>6s} {args.metric:>14s}")
    shown = set()
    for entry in history:
        point = (round(entry.get("epoch", 0), 2), entry.get(args.metric))
        if args.metric in entry and "elapsed_seconds" in entry and point not in shown:  # not the final re-score
            shown.add(point)
            print(f"{entry['elapsed_seconds'] / 60:>8.1f} {entry['epoch']:>6.2f} {entry[args.metric]:>14.4f}")


if __name__ == "__main__":
    main()
