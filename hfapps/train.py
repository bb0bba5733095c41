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

from . import config as recipe_config
from . import models, report
from .config import RecipeError
from .data import load_splits, require_columns
from .evaluation import score_split
from .models import META_FILE
from .resilience import MarkCompleteCheckpoints, guard_finite_loss, last_complete_checkpoint, publish
from .runtime import resolve_device
from .tasks import TRAINING

#: Keys that may change between an interrupted run and its resumption.
RUN_CONTROL_KEYS = {"resume_from_checkpoint", "overwrite", "output_dir", "logging_dir"}
DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "dropout",
                "attention_dropout", "activation_dropout", "dropout_rate", "seq_classif_dropout", "qa_dropout")


def train(recipe: str | dict[str, Any], overrides: Sequence[str] = (),
          callbacks: Sequence[TrainerCallback] = ()) -> dict[str, Any]:
    """Run a recipe (a path, a shipped recipe's name, or a mapping); return its metrics."""
    started = time.time()
    name = "recipe"
    if isinstance(recipe, str):
        path = recipe_config.recipe_path(recipe)
        name = os.path.splitext(os.path.basename(path))[0]
        recipe = recipe_config.read_recipe(path)
    task = recipe_config.task_of(recipe, overrides)
    if task not in TRAINING:
        raise RecipeError(f"Unknown task {task!r} in the recipe; choose one of {', '.join(TRAINING)}.")
    defaults = {**TRAINING[task].training_defaults, "output_dir": os.path.join("runs", name),
                # With no accelerator, only use_cpu makes a multi-process launch a real gloo DDP run.
                "use_cpu": resolve_device(None).type == "cpu"}
    model_args, data_args, training_args = recipe_config.parse({**defaults, **recipe}, overrides)
    spec = TRAINING[data_args.task](data_args)
    resolved = recipe_config.to_dict(model_args, data_args, training_args)
    _check_training_args(data_args, training_args)
    checkpoint = _prepare_output_dir(training_args, data_args, resolved)
    set_seed(training_args.seed)

    # Data: loaded and checked before any weights are.
    splits = spec.prepare(load_splits(data_args, seed=training_args.seed))
    require_columns(splits, spec.columns())
    spec.check(splits)

    # Model and tokenizer.
    ref, config = models.resolve(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    tokenizer_ref = models.resolve(model_args.tokenizer_name)[0] if model_args.tokenizer_name else ref
    tokenizer = models.load_tokenizer(tokenizer_ref, trust_remote_code=model_args.trust_remote_code)
    extra = spec.model_kwargs()
    if model_args.dropout is not None:
        extra.update({k: model_args.dropout for k in DROPOUT_KEYS if hasattr(config, k)})
    model = spec.auto_model.from_pretrained(
        ref.path, trust_remote_code=model_args.trust_remote_code, use_safetensors=None if model_args.allow_pickle
        else True, **ref.kwargs(), **extra)
    spec.configure(model)

    # Tokenise (the main process first, so the others reuse its datasets cache).
    with training_args.main_process_first(desc="tokenizing"):
        tokenized = {name: spec.tokenize(split, tokenizer, model.config) for name, split in splits.items()}

    trainer_callbacks = [MarkCompleteCheckpoints(), *callbacks]
    if data_args.early_stopping_patience:
        trainer_callbacks.append(EarlyStoppingCallback(early_stopping_patience=data_args.early_stopping_patience))
    trainer = spec.trainer_class(
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
        os.makedirs(training_args.output_dir, exist_ok=True)
        report.write_recipe(os.path.join(training_args.output_dir, "recipe.yaml"), resolved)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    # The final model (the best checkpoint when load_best_model_at_end) is written to a staging folder and
    # moved into place only once whole, so an interrupted save never looks like a finished model.
    staging = os.path.join(training_args.output_dir, ".staging")
    trainer.save_model(staging)
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        publish(staging, training_args.output_dir)
    metrics: dict[str, Any] = {"train": result.metrics, "eval": trainer.evaluate()}
    if "eval_loss" in metrics["eval"] and data_args.task == "mlm":
        import math

        metrics["eval"]["perplexity"] = math.exp(min(metrics["eval"]["eval_loss"], 50))
    if not trainer.is_world_process_zero():
        return metrics

    # Everything below is written by the main process only.
    out = training_args.output_dir
    report.write_json(os.path.join(out, META_FILE), spec.meta(tokenizer, model.config))
    if spec.scorable():
        for split_name in ("validation", "test"):
            if split_name in splits:
                metrics[split_name] = score_split(data_args.task, out, splits[split_name], data_args,
                                                  device=str(training_args.device))
    report.write_json(os.path.join(out, "metrics.json"), metrics)
    report.write_json(os.path.join(out, "log_history.json"), trainer.state.log_history)
    report.write_json(os.path.join(out, "run.json"), {
        "versions": report.versions(), "seed": training_args.seed, "world_size": training_args.world_size,
        "device": str(training_args.device), "wall_seconds": round(time.time() - started, 1),
        "resumed_from": checkpoint, "global_step": trainer.state.global_step,
    })
    report.plot_curve(trainer.state.log_history, os.path.join(out, "training_curve.png"))
    report.model_card(os.path.join(out, "README.md"), task=data_args.task, base_model=ref.name, resolved=resolved,
                      metrics=metrics, command="hfapps train " + " ".join([name, *overrides]))
    return metrics


def _check_training_args(data_args, training_args) -> None:
    if data_args.early_stopping_patience and not training_args.load_best_model_at_end:
        raise RecipeError("early_stopping_patience needs load_best_model_at_end: true (with eval_strategy and "
                          "save_strategy alike, e.g. both 'epoch'), so that the best checkpoint is kept and restored.")


def _prepare_output_dir(training_args, data_args, resolved: dict[str, Any]) -> str | None:
    """Decide where training starts: fresh, or from a checkpoint of the same run.

    An output folder that holds a different run (another recipe, or files hfapps did not write) is
    refused unless `overwrite: true`; then it is emptied. The same run resumes from its last checkpoint.
    """
    out = training_args.output_dir
    if training_args.resume_from_checkpoint:
        if not os.path.isdir(training_args.resume_from_checkpoint):
            raise RecipeError(f"resume_from_checkpoint {training_args.resume_from_checkpoint!r} does not exist.")
        return training_args.resume_from_checkpoint
    if not os.path.isdir(out) or not os.listdir(out):
        return None
    previous = os.path.join(out, "recipe.yaml")
    same_run = False
    if os.path.isfile(previous):
        old = recipe_config.read_recipe(previous)
        same_run = {k: v for k, v in old.items() if k not in RUN_CONTROL_KEYS} == {
            k: v for k, v in report.plain_recipe(resolved).items() if k not in RUN_CONTROL_KEYS}
    if data_args.overwrite:
        if training_args.process_index == 0:
            shutil.rmtree(out)
        return None
    if not same_run:
        raise RecipeError(f"The output folder {out!r} already holds a different run. Pass --overwrite true to "
                          "replace it, or choose another --output_dir.")
    if os.path.isfile(os.path.join(out, "metrics.json")):
        raise RecipeError(f"The output folder {out!r} already holds this run, finished. Pass --overwrite true to "
                          "train it again, or choose another --output_dir.")
    last = last_complete_checkpoint(out)
    if last:
        print(f"hfapps: resuming from {last}", file=sys.stderr)
    return last

