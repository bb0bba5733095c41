"""Hyperparameter search over a recipe: `Trainer.hyperparameter_search` with optuna.

    hfapps tune sentiment --dataset_name sample --n_trials 3 --timeout 900 --output_dir runs/sentiment-tune

Each trial trains the recipe's model from scratch with settings drawn from the recipe's `search_space:` (or
the default one below) and is scored on the validation split by the recipe's `metric_for_best_model`. A
trial that falls behind the others at an evaluation is pruned (optuna's median rule). The output folder gets
`trials.csv` (every trial's settings, state and score), `trials.png` (score per trial, best so far), and
`best_recipe.yaml`: the recipe with the best settings, ready for `hfapps train`.

A search space maps training keys to a list of choices or a range:

    search_space:
      learning_rate: {low: 1.0e-5, high: 5.0e-4, log: true}
      per_device_train_batch_size: [16, 32, 64]
      num_train_epochs: {low: 1, high: 3}          # whole numbers: an integer range
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Any

from transformers import TrainingArguments

from ..errors import RecipeError
from . import artifacts as report
from . import recipe as recipe_config

#: Used for every key a recipe's `search_space:` does not give (when it gives none).
DEFAULT_SEARCH_SPACE: dict[str, Any] = {
    "learning_rate": {"low": 1.0e-5, "high": 5.0e-4, "log": True},
    "per_device_train_batch_size": [16, 32, 64],
    "num_train_epochs": {"low": 1, "high": 3},
    "warmup_steps": {"low": 0.0, "high": 0.1},
    "weight_decay": {"low": 0.0, "high": 0.1},
}
#: Written into the output folder; only a folder holding it is ever cleared (with --overwrite true).
TUNE_MARKER = "hfapps-tune.json"
TUNE_FILES = ("trials.csv", "trials.png", "best_recipe.yaml", "tune.json", TUNE_MARKER)


def parse_space(space: Any) -> dict[str, Any]:
    """The recipe's search space, checked: every key a TrainingArguments field, every value a non-empty list
    of choices or a {low, high[, log]} range."""
    if space is None:
        return dict(DEFAULT_SEARCH_SPACE)
    if not isinstance(space, dict) or not space:
        raise RecipeError(
            "search_space must map training keys to a list of choices or a {low: ..., high: ...} "
            "range, e.g. learning_rate: {low: 1.0e-5, high: 5.0e-4, log: true}."
        )
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    for key, value in space.items():
        if key not in fields:
            raise RecipeError(
                f"search_space key {key!r} is not a training key; a trial can vary "
                "TrainingArguments fields only (learning_rate, per_device_train_batch_size, "
                "num_train_epochs, warmup_steps, weight_decay, lr_scheduler_type, ...)."
            )
        if isinstance(value, list):
            if not value:
                raise RecipeError(f"search_space {key!r} has an empty list of choices.")
            continue
        if not isinstance(value, dict) or set(value) - {"low", "high", "log"} or not {"low", "high"} <= set(value):
            raise RecipeError(
                f"search_space {key!r} must be a list of choices or {{low: ..., high: ..., log: "
                f"true|false}}, got {value!r}."
            )
        if (
            not all(isinstance(value[k], (int, float)) and not isinstance(value[k], bool) for k in ("low", "high"))
            or value["low"] > value["high"]
        ):
            raise RecipeError(f"search_space {key!r} needs numbers low <= high, got {value!r}.")
        if value.get("log") and value["low"] <= 0:
            raise RecipeError(f"search_space {key!r} is on a log scale, so low must be above 0.")
    return space


def suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """One trial's settings, drawn from `space` by optuna."""
    drawn: dict[str, Any] = {}
    for key, value in space.items():
        if isinstance(value, list):
            drawn[key] = trial.suggest_categorical(key, value)
        elif isinstance(value["low"], int) and isinstance(value["high"], int) and not value.get("log"):
            drawn[key] = trial.suggest_int(key, value["low"], value["high"])
        else:
            drawn[key] = trial.suggest_float(key, float(value["low"]), float(value["high"]), log=bool(value.get("log")))
    return drawn


def tune(
    recipe: str | dict[str, Any],
    overrides: Sequence[str] = (),
    *,
    n_trials: int = 10,
    timeout: float | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Search the recipe's hyperparameters; return {"best": {...settings}, "objective": score, ...}."""
    try:
        import optuna
    except ImportError as err:
        raise RecipeError(
            "hfapps tune needs optuna, which is not installed: pip install optuna (the hfapps[tune] extra)."
        ) from err

    from .runner import load_data, load_model, load_tokenizer, setup

    if n_trials < 1:
        raise RecipeError(f"--n_trials must be at least 1, got {n_trials}.")
    if isinstance(recipe, str):
        path = recipe_config.recipe_path(recipe)
        source = recipe_config.read_recipe(path)
        name = os.path.splitext(os.path.basename(path))[0]
    else:
        source, name = dict(recipe), "recipe"
    space = parse_space(source.pop("search_space", None))
    # Trials keep no checkpoints; they are scored at each evaluation, which is also where pruning happens.
    trial_settings = {
        "save_strategy": "no",
        "load_best_model_at_end": False,
        "report_to": "none",
        "early_stopping_patience": None,
    }
    _, model_args, data_args, training_args, spec, resolved = setup(
        {**source, **trial_settings},
        overrides,
        overwrite=overwrite,
        defaults={"output_dir": os.path.join("runs", f"{name}-tune")},
    )
    if training_args.eval_strategy == "no":
        raise RecipeError("hfapps tune scores each trial on the validation split: set eval_strategy to epoch or steps.")
    metric = training_args.metric_for_best_model or "loss"
    objective_key = metric if metric.startswith("eval_") else f"eval_{metric}"
    greater = (
        training_args.greater_is_better if training_args.greater_is_better is not None else not metric.endswith("loss")
    )
    out = training_args.output_dir
    _prepare_output(out, data_args.overwrite)
    started = time.time()

    splits = load_data(spec, data_args, training_args)
    ref, config, tokenizer = load_tokenizer(model_args, spec)
    tokenized = {key: spec.tokenize(split, tokenizer, config) for key, split in splits.items()}

    from .resilience import guard_finite_loss

    def model_init(trial: Any = None):
        return load_model(model_args, spec, ref, config)

    trainer = spec.trainer_class(
        model_init=model_init,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        compute_metrics=spec.compute_metrics(),
    )
    trainer.data_collator = spec.collator(tokenizer, trainer.model)  # the model model_init made: no extra load
    guard_finite_loss(trainer)

    def objective(metrics: dict[str, float]) -> float:
        if objective_key not in metrics:
            raise RecipeError(
                f"metric_for_best_model {metric!r} is not among the evaluation's metrics "
                f"({', '.join(sorted(metrics))})."
            )
        return metrics[objective_key]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    best = trainer.hyperparameter_search(
        hp_space=lambda trial: suggest(trial, space),
        compute_objective=objective,
        n_trials=n_trials,
        direction="maximize" if greater else "minimize",
        backend="optuna",
        timeout=timeout,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        sampler=optuna.samplers.TPESampler(seed=training_args.seed),
        storage=storage,
        study_name="hfapps-tune",
    )
    study = optuna.load_study(study_name="hfapps-tune", storage=storage)
    rows = _write_trials(os.path.join(out, "trials.csv"), study, space, objective_key)
    _plot(os.path.join(out, "trials.png"), rows, objective_key, greater)
    best_recipe = {**report.plain_recipe(_best_recipe(source, overrides)), **best.hyperparameters}
    best_recipe["output_dir"] = os.path.join("runs", f"{name}-best")
    report.write_recipe(os.path.join(out, "best_recipe.yaml"), best_recipe)
    summary = {
        "best": best.hyperparameters,
        "objective": best.objective,
        "metric": objective_key,
        "trials": len(rows),
        "pruned": sum(r["state"] == "PRUNED" for r in rows),
        "wall_seconds": round(time.time() - started, 1),
        "search_space": space,
        "best_recipe": os.path.join(out, "best_recipe.yaml"),
    }
    report.write_json(os.path.join(out, "tune.json"), summary)
    report.write_json(os.path.join(out, TUNE_MARKER), {"made_by": "hfapps tune"})
    return summary


def _best_recipe(source: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """The recipe as the user ran it: its own keys, with the command line's overrides applied (data files
    given there replace the recipe's Hub dataset, as in `hfapps train`)."""
    import yaml

    from .runner import _files_win

    merged = _files_win(dict(source), overrides)
    args = list(overrides)
    for i, arg in enumerate(args):
        if arg.startswith("--") and arg[2:] not in recipe_config.COMMAND_LINE_ONLY:
            values = []
            for value in args[i + 1 :]:
                if value.startswith("--"):
                    break
                values.append(yaml.safe_load(value) if value else value)
            merged[arg[2:]] = values[0] if len(values) == 1 else values
    merged.pop("output_dir", None)
    return merged


def _prepare_output(out: str, overwrite: bool) -> None:
    """Refuse a folder holding anything but an earlier `hfapps tune` run; clear that one only when asked."""
    if not os.path.isdir(out) or not os.listdir(out):
        os.makedirs(out, exist_ok=True)
        return
    if not os.path.isfile(os.path.join(out, TUNE_MARKER)):
        raise RecipeError(
            f"The output folder {out!r} holds files that hfapps tune did not write; hfapps never "
            "deletes them. Choose another --output_dir."
        )
    if not overwrite:
        raise RecipeError(
            f"The output folder {out!r} holds an earlier search. Pass --overwrite true to replace "
            "it, or choose another --output_dir."
        )
    import re
    import shutil

    for entry in os.listdir(out):
        path = os.path.join(out, entry)
        if entry in TUNE_FILES:
            os.remove(path)
        elif re.fullmatch(r"run-\d+", entry) and os.path.isdir(path):
            shutil.rmtree(path)


def _write_trials(path: str, study: Any, space: dict[str, Any], objective_key: str) -> list[dict[str, Any]]:
    rows = []
    for trial in study.trials:
        seconds = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else None
        )
        finished = trial.state.name == "COMPLETE"  # a pruned trial's score is only its last report
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name,
                objective_key: trial.value if finished else None,
                **{key: trial.params.get(key) for key in space},
                "last_reported": trial.intermediate_values[max(trial.intermediate_values)]
                if trial.intermediate_values
                else None,
                "last_step": max(trial.intermediate_values) if trial.intermediate_values else None,
                "seconds": round(seconds, 1) if seconds is not None else None,
            }
        )
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["trial"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _plot(path: str, rows: list[dict[str, Any]], objective_key: str, greater: bool) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5))
    axes = figure.add_subplot()
    done = [r for r in rows if r[objective_key] is not None]
    pruned = [r for r in rows if r["state"] == "PRUNED" and r["last_reported"] is not None]
    axes.scatter([r["trial"] for r in done], [r[objective_key] for r in done], label="trial")
    if pruned:
        axes.scatter(
            [r["trial"] for r in pruned],
            [r["last_reported"] for r in pruned],
            marker="x",
            label="pruned (its last score)",
        )
    best, best_line = None, []
    for r in done:
        value = r[objective_key]
        best = value if best is None or (value > best if greater else value < best) else best
        best_line.append(best)
    axes.plot([r["trial"] for r in done], best_line, label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(objective_key)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
