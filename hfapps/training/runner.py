"""The one training runner: a YAML recipe (plus `--key value` overrides) to a fine-tuned model folder.

    hfapps train recipes/sentiment.yaml --learning_rate 3e-5 --train_file my.csv
    accelerate launch --config_file recipes/accelerate/ddp.yaml -m hfapps train recipes/question_answering.yaml

Read it top to bottom: parse the recipe, check the data, load the model, tokenise, train with the
task's Trainer, save, score with the task's helper. What differs per task comes from that task's
`TaskTraining` (see hfapps/tasks/).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback, set_seed

from .. import models
from ..data import require_columns
from ..errors import RecipeError
from ..inference.devices import resolve_device
from ..models import COMPLETE_MARKER, META_FILE, is_complete_checkpoint, last_complete_checkpoint
from ..tasks import TRAINING
from . import adapters
from . import artifacts as report
from . import recipe as recipe_config
from .evaluation import score_split
from .resilience import MarkCompleteCheckpoints, guard_finite_loss, publish
from .splits import load_splits

#: Keys that may change between an interrupted run and its resumption.
RUN_CONTROL_KEYS = {"resume_from_checkpoint", "output_dir", "logging_dir", *recipe_config.COMMAND_LINE_ONLY}
#: hfapps writes this into every output folder it trains in; only a folder that holds it is ever emptied.
RUN_MARKER = "hfapps-run.json"
#: What a run writes besides the files its marker lists at the end (checkpoints, the staging folder, logs).
RUN_OWNED = (RUN_MARKER, "recipe.yaml", ".staging", "runs")
DATA_FILE_KEYS = ("train_file", "validation_file", "test_file")
DROPOUT_KEYS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "classifier_dropout",
    "dropout",
    "attention_dropout",
    "activation_dropout",
    "dropout_rate",
    "seq_classif_dropout",
    "qa_dropout",
)


def train(
    recipe: str | dict[str, Any],
    overrides: Sequence[str] = (),
    callbacks: Sequence[TrainerCallback] = (),
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run a recipe (a path, a shipped recipe's name, or a mapping); return its metrics.

    `overrides` are `--key value` pairs, as on the command line. `overwrite=True` (or `--overwrite true`) lets
    the run start over in an output folder that holds an earlier hfapps run.
    """
    started = time.time()
    name, model_args, data_args, training_args, spec, resolved = setup(recipe, overrides, overwrite=overwrite)
    _check_training_args(data_args, training_args)
    checkpoint, start_over = _plan_output_dir(training_args, data_args, resolved)
    set_seed(training_args.seed)
    splits = load_data(spec, data_args, training_args)  # loaded and checked before any weights are
    ref, config, tokenizer = load_tokenizer(model_args, spec)
    model = load_model(model_args, spec, ref, config)
    trainer_class = spec.trainer_class
    if model_args.teacher:
        from . import distill

        model, trainer_class = distill.prepare(model_args, model, tokenizer, trainer_class)

    # Every check has passed: only now may an earlier run in the output folder be cleared.
    with training_args.main_process_first(desc="preparing the output folder"):
        if training_args.process_index == 0:
            if start_over:
                _clear_run(training_args.output_dir)
            _mark_run(training_args.output_dir)

    # Tokenise (the main process first, so the others reuse its datasets cache).
    with training_args.main_process_first(desc="tokenizing"):
        tokenized = {name: spec.tokenize(split, tokenizer, model.config) for name, split in splits.items()}

    trainer_callbacks = [MarkCompleteCheckpoints(), report.ElapsedTime(), *callbacks]
    if data_args.early_stopping_patience:
        trainer_callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience))
    trainer = trainer_class(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=spec.collator(tokenizer, model),
        compute_metrics=spec.compute_metrics(),
        callbacks=trainer_callbacks,
    )
    guard_finite_loss(trainer)
    if trainer.is_world_process_zero():
        report.write_recipe(os.path.join(training_args.output_dir, "recipe.yaml"), _shareable(resolved))
    result = trainer.train(resume_from_checkpoint=checkpoint)
    # The final model (the best checkpoint when load_best_model_at_end) is written to a staging folder and
    # moved into place only once whole, so an interrupted save never looks like a finished model.
    staging = os.path.join(training_args.output_dir, ".staging")
    trainer.save_model(staging, _internal_call=True)  # no push yet: the Hub gets the finished folder below
    if model_args.peft and trainer.is_world_process_zero():
        adapters.save_config(trainer.model, staging)
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        publish(staging, training_args.output_dir)
        _mark_run(training_args.output_dir, finished=True)
    metrics: dict[str, Any] = {"train": result.metrics, "eval": spec.evaluation_metrics(trainer.evaluate())}
    if not trainer.is_world_process_zero():
        return metrics

    # Everything below is written by the main process only.
    out = training_args.output_dir
    report.write_json(os.path.join(out, META_FILE), {"task": data_args.task, **spec.meta(tokenizer, model.config)})
    if spec.scorable():
        for split_name in ("validation", "test"):
            if split_name in splits:
                metrics[split_name] = score_split(
                    data_args.task, out, splits[split_name], data_args, device=str(training_args.device)
                )
    report.write_json(os.path.join(out, "metrics.json"), metrics)
    report.write_json(os.path.join(out, "log_history.json"), trainer.state.log_history)
    report.write_json(
        os.path.join(out, "run.json"),
        {
            "versions": report.versions(),
            "seed": training_args.seed,
            "world_size": training_args.world_size,
            "device": str(training_args.device),
            "wall_seconds": round(time.time() - started, 1),
            "resumed_from": checkpoint,
            "global_step": trainer.state.global_step,
            "report_to": list(training_args.report_to or []),
            "parameters": sum(p.numel() for p in model.parameters()),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        },
    )
    report.plot_curve(trainer.state.log_history, os.path.join(out, "training_curve.png"))
    report.model_card(
        os.path.join(out, "README.md"),
        task=data_args.task,
        base_model=ref.name,
        resolved=_shareable(resolved),
        metrics=metrics,
        command="hfapps train " + " ".join([name, *overrides]),
    )
    _mark_run(out, finished=True)
    if training_args.push_to_hub:  # the whole folder, model, metrics and card, is in place only now
        trainer.push_to_hub(commit_message="hfapps train: final model")
    return metrics


def setup(
    recipe: str | dict[str, Any],
    overrides: Sequence[str],
    *,
    overwrite: bool = False,
    defaults: dict[str, Any] | None = None,
) -> tuple[str, Any, Any, Any, Any, dict[str, Any]]:
    """(the recipe's name, its three parsed dataclasses, the task's training part, the resolved recipe)."""
    name = "recipe"
    if isinstance(recipe, str):
        path = recipe_config.recipe_path(recipe)
        name = os.path.splitext(os.path.basename(path))[0]
        recipe = recipe_config.read_recipe(path)
    recipe = _files_win(recipe, overrides)
    task = recipe_config.task_of(recipe, overrides)
    if task not in TRAINING:
        raise RecipeError(f"Unknown task {task!r} in the recipe; choose one of {', '.join(TRAINING)}.")
    defaults = {
        "output_dir": os.path.join("runs", name),
        # With no accelerator, only use_cpu makes a multi-process launch a real gloo DDP run.
        "use_cpu": resolve_device(None).type == "cpu",
        **(defaults or {}),
    }
    model_args, data_args, training_args = recipe_config.parse({**defaults, **recipe}, overrides)
    data_args.overwrite = data_args.overwrite or overwrite
    spec = TRAINING[data_args.task](data_args)
    spec.training_args = training_args  # a task's own keys (sft: its templates)
    if model_args.teacher and not spec.distillable:
        able = ", ".join(name for name, training in TRAINING.items() if training.distillable)
        raise RecipeError(f"Distillation (teacher:) trains students of {able}, not {data_args.task}.")
    return name, model_args, data_args, training_args, spec, recipe_config.to_dict(model_args, data_args, training_args)


def load_data(spec, data_args, training_args):
    """The recipe's splits, reshaped for the task and checked."""
    splits = spec.prepare(load_splits(data_args, seed=training_args.seed, sample=spec.load_sample))
    require_columns(splits, spec.columns())
    spec.check(splits)
    return splits


def load_tokenizer(model_args, spec):
    """(where the model is, its config, its tokenizer), through models.py like every other load (its safety rules live
    there). A distillation teacher is checked here, before any weights load."""
    if model_args.teacher:
        from . import distill

        distill.check_teacher(model_args, getattr(spec, "labels", None))
    model_args.model_name_or_path = model_args.model_name_or_path or model_args.teacher  # a student cut from it
    assert model_args.model_name_or_path  # ModelArguments refuses a recipe with neither
    ref, config = models.resolve(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    tokenizer_ref = models.resolve(model_args.tokenizer_name)[0] if model_args.tokenizer_name else ref
    return ref, config, models.load_tokenizer(tokenizer_ref, trust_remote_code=model_args.trust_remote_code)


def load_model(model_args, spec, ref, config):
    """The model to train: the task's head and settings, the recipe's dropout, and its adapter if any."""
    extra = spec.model_kwargs()
    if model_args.dropout is not None:
        extra.update({k: model_args.dropout for k in DROPOUT_KEYS if hasattr(config, k)})
    model = models.load_weights(
        ref,
        spec.auto_model,
        trust_remote_code=model_args.trust_remote_code,
        allow_pickle=model_args.allow_pickle,
        **extra,
    )
    spec.configure(model)
    if model_args.peft:
        model = adapters.wrap(model, model_args, spec.peft_task_type, base_id=ref.name)
    return model


def _files_win(recipe: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Data files given on the command line replace the recipe's Hub dataset; a recipe may not set both."""
    in_recipe = [key for key in DATA_FILE_KEYS if recipe.get(key)]
    if recipe.get("dataset_name") and in_recipe:
        raise RecipeError(
            f"The recipe sets both dataset_name ({recipe['dataset_name']!r}) and {in_recipe[0]}; "
            "keep one source of data."
        )
    given = {key.lstrip("-"): value for key, value in zip(overrides, list(overrides)[1:]) if key.startswith("--")}
    files = [key for key in DATA_FILE_KEYS if given.get(key)]
    if files and given.get("dataset_name"):
        raise RecipeError(f"Both --dataset_name and --{files[0]} were given; pass one source of data.")
    if files and recipe.get("dataset_name"):
        recipe = {k: v for k, v in recipe.items() if k not in ("dataset_name", "dataset_config_name", "splits")}
    return recipe


def _shareable(resolved: dict[str, Any]) -> dict[str, Any]:
    """The resolved recipe without the command-line-only keys, so that it can be run again as a recipe file."""
    return {k: v for k, v in resolved.items() if k not in recipe_config.COMMAND_LINE_ONLY}


def _mark_run(out: str, *, finished: bool = False) -> None:
    """Mark `out` as a folder hfapps trains in; once finished, record what the run wrote there."""
    os.makedirs(out, exist_ok=True)
    record: dict[str, Any] = {"made_by": "hfapps train"}
    if finished:
        record["files"] = sorted(os.listdir(out))
    report.write_json(os.path.join(out, RUN_MARKER), record)


def _foreign_entries(out: str) -> list[str]:
    """What in `out` an hfapps run did not write (everything, when the folder carries no run marker)."""
    import json
    import re

    marker = os.path.join(out, RUN_MARKER)
    if not os.path.isfile(marker):
        return sorted(os.listdir(out))
    with open(marker, encoding="utf-8") as handle:
        listed = set(json.load(handle).get("files", []))
    return sorted(
        entry
        for entry in os.listdir(out)
        if entry not in listed and entry not in RUN_OWNED and not re.fullmatch(r"checkpoint-\d+|.*\.tmp", entry)
    )


def _clear_run(out: str) -> None:
    """Remove an earlier run's files from `out`; `_plan_output_dir` has checked that nothing else is there."""
    for entry in os.listdir(out):
        path = os.path.join(out, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _check_training_args(data_args, training_args) -> None:
    if data_args.early_stopping_patience and not training_args.load_best_model_at_end:
        raise RecipeError(
            "early_stopping_patience needs load_best_model_at_end: true (with eval_strategy and "
            "save_strategy alike, e.g. both 'epoch'), so that the best checkpoint is kept and restored."
        )
    _check_report_to(training_args.report_to or [])


def _check_report_to(report_to: list[str]) -> None:
    """Every `report_to` integration is one transformers has, and its package is installed (before any training)."""
    from transformers.integrations import get_available_reporting_integrations
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    for name in report_to:
        if name not in INTEGRATION_TO_CALLBACK:
            raise RecipeError(
                f"report_to {name!r} is not an integration transformers has; use one of "
                f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}, or none."
            )
        if name not in get_available_reporting_integrations():
            raise RecipeError(
                f"report_to {name!r} needs its package, which is not installed: pip install {name.replace('_', '-')}."
            )


def _plan_output_dir(training_args, data_args, resolved: dict[str, Any]) -> tuple[str | None, bool]:
    """(the checkpoint to resume from, whether the folder's earlier run must be cleared first). Decides only:
    nothing is deleted here, and the folder is cleared only once the data and the model have passed their checks.

    A folder that holds files hfapps did not write is never cleared, not even with `overwrite`. The same
    unfinished run resumes from its last complete checkpoint; another run, or a finished one, needs `overwrite`.
    """
    out = training_args.output_dir
    wanted = training_args.resume_from_checkpoint
    if wanted:
        return _checkpoint_to_resume(wanted, out), False
    if not os.path.isdir(out) or not os.listdir(out):
        return None, False
    foreign = _foreign_entries(out)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RecipeError(
            f"The output folder {os.path.abspath(out)!r} holds files that hfapps did not write "
            f"({shown}); hfapps never deletes them, with or without --overwrite. Choose another "
            "--output_dir, or move them out."
        )
    if data_args.overwrite:
        return None, True
    previous = os.path.join(out, "recipe.yaml")
    same_run = False
    if os.path.isfile(previous):
        old = recipe_config.read_recipe(previous)
        same_run = {k: v for k, v in old.items() if k not in RUN_CONTROL_KEYS} == {
            k: v for k, v in report.plain_recipe(_shareable(resolved)).items() if k not in RUN_CONTROL_KEYS
        }
    if not same_run:
        raise RecipeError(
            f"The output folder {out!r} already holds a different run. Pass --overwrite true to "
            "replace it, or choose another --output_dir."
        )
    if os.path.isfile(os.path.join(out, "metrics.json")):
        raise RecipeError(
            f"The output folder {out!r} already holds this run, finished. Pass --overwrite true to "
            "train it again, or choose another --output_dir."
        )
    last = last_complete_checkpoint(out)
    if last:
        print(f"hfapps: resuming from {last}", file=sys.stderr)
    return last, False


def _checkpoint_to_resume(wanted: str, out: str) -> str:
    """`resume_from_checkpoint`: a checkpoint folder, or true for the last complete one in the output folder."""
    if wanted.lower() in ("true", "yes", "1"):
        last = last_complete_checkpoint(out) if os.path.isdir(out) else None
        if last is None:
            raise RecipeError(
                f"resume_from_checkpoint is true, but {out!r} holds no complete checkpoint to "
                "resume from. Run without it to start from the beginning."
            )
        return last
    if not os.path.isdir(wanted):
        raise RecipeError(f"resume_from_checkpoint {wanted!r} does not exist.")
    parent = os.path.dirname(os.path.abspath(wanted))
    made_by_hfapps = os.path.isfile(os.path.join(parent, RUN_MARKER)) or os.path.isfile(
        os.path.join(parent, "recipe.yaml")
    )
    if made_by_hfapps and not is_complete_checkpoint(wanted):
        last = last_complete_checkpoint(parent)
        raise RecipeError(
            f"{wanted!r} was interrupted while being written (it has no {COMPLETE_MARKER}), so its "
            "files may be partial. "
            + (f"Resume from {last!r} instead." if last else "No complete checkpoint exists in that run.")
        )
    if not os.path.isfile(os.path.join(wanted, "trainer_state.json")):
        raise RecipeError(f"{wanted!r} is not a training checkpoint (it has no trainer_state.json).")
    return wanted
