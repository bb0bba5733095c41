"""`hfapps train`, `hfapps tune`, `hfapps recipes`, `hfapps evaluate`: fine-tune with a recipe, search its
hyperparameters, list the shipped recipes, score a model on a data file.

    hfapps train recipes/sentiment.yaml --learning_rate 3e-5 --train_file my.csv
    hfapps tune sentiment --n_trials 8 --dataset_name sample
    hfapps evaluate sentiment --model runs/sentiment --data test.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import HfappsError
from ..tasks import TASKS, TRAINING
from ..training.evaluation import COLUMN_SETTINGS, evaluate_file
from ..training.recipe import help_text, shipped_recipes
from ..training.runner import train
from ..training.tune import tune


def add(sub: Any) -> None:
    parser = sub.add_parser(
        "train", help="fine-tune with a YAML recipe: hfapps train RECIPE [--key value ...]", add_help=False
    )
    parser.add_argument("recipe", nargs="?", help="a recipe file, or the name of a shipped one (hfapps recipes)")
    parser.add_argument("overrides", nargs=argparse.REMAINDER, help="--key value pairs overriding the recipe")
    parser.set_defaults(run=run_train)
    parser = sub.add_parser(
        "tune",
        help="search a recipe's hyperparameters with optuna: hfapps tune RECIPE "
        "--n_trials N [--timeout S] [--key value ...]",
    )
    parser.add_argument("recipe", help="a recipe file, or the name of a shipped one (hfapps recipes)")
    parser.add_argument("--n_trials", "--n-trials", type=int, default=10, help="how many trials (default 10)")
    parser.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    parser.add_argument("overrides", nargs=argparse.REMAINDER, help="--key value pairs overriding the recipe")
    parser.set_defaults(run=run_tune)
    sub.add_parser("recipes", help="list the shipped recipes").set_defaults(run=run_recipes)
    parser = sub.add_parser("evaluate", help="score a model on a data file with its task helper")
    parser.add_argument("task", choices=[name for name in TRAINING if name in TASKS])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="CSV, TSV, JSON(L), Parquet, TXT or SQuAD JSON")
    parser.add_argument("--split", default="test", help="the name the scores are filed under")
    parser.add_argument("--output", help="write the metrics JSON here (default: print it)")
    parser.add_argument("--max-samples", type=int, default=None)
    for column in COLUMN_SETTINGS:
        parser.add_argument(f"--{column.replace('_', '-')}", dest=column, default=None)
    parser.set_defaults(run=run_evaluate)


def print_recipe_help() -> int:
    """`hfapps train --help`: every recipe key, from the same field metadata the parser reads."""
    print(help_text())
    return 0


def run_train(args: argparse.Namespace, argv: list[str]) -> int:
    metrics = train(args.recipe, args.overrides)
    print(json.dumps({k: v for k, v in metrics.items() if k != "train"}, indent=2, default=str))
    return 0


def run_tune(args: argparse.Namespace, argv: list[str]) -> int:
    overrides, found = list(args.overrides), {"n_trials": args.n_trials, "timeout": args.timeout}
    for key, kind in (("n_trials", int), ("timeout", float)):  # after the recipe, they sit among the overrides
        for flag in (f"--{key}", f"--{key.replace('_', '-')}"):
            if flag in overrides:
                at = overrides.index(flag)
                if at + 1 >= len(overrides):
                    raise HfappsError(f"{flag} needs a value.")
                try:
                    found[key] = kind(overrides[at + 1])
                except ValueError as err:
                    raise HfappsError(f"{flag} takes a number, got {overrides[at + 1]!r}.") from err
                del overrides[at : at + 2]
    summary = tune(args.recipe, overrides, n_trials=found["n_trials"], timeout=found["timeout"])
    print(json.dumps(summary, indent=2, default=str))
    print(f"Best recipe: hfapps train {summary['best_recipe']}", file=sys.stderr)
    return 0


def run_recipes(args: argparse.Namespace, argv: list[str]) -> int:
    for name, path in shipped_recipes().items():
        print(f"{name:20s} {path}")
    return 0


def run_evaluate(args: argparse.Namespace, argv: list[str]) -> int:
    columns = {k: getattr(args, k) for k in COLUMN_SETTINGS if getattr(args, k) is not None}
    scores = evaluate_file(args.task, args.model, args.data, split=args.split, max_samples=args.max_samples, **columns)
    text = json.dumps(scores, indent=2, default=str)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)
    return 0
