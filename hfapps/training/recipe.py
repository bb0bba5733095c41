"""Recipe configuration: dataclasses parsed by `transformers.HfArgumentParser`, as in the transformers
examples and TRL. A recipe is a flat YAML mapping of these fields (plus `TrainingArguments` or
`Seq2SeqTrainingArguments` fields); `--key value` on the command line overrides it. The help text
lives once, in the field metadata below.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from transformers import HfArgumentParser, Seq2SeqTrainingArguments, TrainingArguments

from ..errors import RecipeError
from ..tasks import TRAINING
from ..tasks.arguments import DataArguments

#: What every recipe gets unless it says otherwise, so that recipes state only what differs.
RECIPE_DEFAULTS: dict[str, Any] = {
    "weight_decay": 0.01,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
}

#: The shipped recipes, package data (the repository's top-level `recipes/` points here).
RECIPES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes")
#: Keys that only the command line or a Python argument may set, never a recipe file: they delete folders or
#: run code, and a recipe may come from someone else.
COMMAND_LINE_ONLY = ("overwrite", "trust_remote_code", "allow_pickle")


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or local folder of the pretrained model to start from (distillation: default the teacher)."
        },
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer, if not the model's own."})
    dropout: float | None = field(
        default=None, metadata={"help": "Set the model's dropout probabilities (hidden, attention, classifier)."}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow the model's own code to run (command line only)."}
    )
    allow_pickle: bool = field(
        default=False, metadata={"help": "Allow loading pickle (.bin) weights (command line only)."}
    )
    teacher: str | None = field(
        default=None,
        metadata={
            "help": "Distillation (sentiment, classification): a fine-tuned classifier whose softened outputs the "
            "model learns from, besides the gold labels."
        },
    )
    student_layers: int | None = field(
        default=None,
        metadata={
            "help": "Distillation: cut the student to this many of its layers, spread evenly (6 -> 3 keeps 1, 3, 5)."
        },
    )
    distill_temperature: float = field(
        default=2.0,
        metadata={"help": "Distillation: softmax temperature for teacher and student (higher: softer targets)."},
    )
    distill_alpha: float = field(
        default=0.5,
        metadata={"help": "Distillation: weight of the teacher's loss; 1 - distill_alpha goes to the gold labels."},
    )
    peft: str | None = field(
        default=None,
        metadata={
            "help": "Train an adapter instead of every weight: lora, or dora (weight-decomposed LoRA); none trains "
            "every weight (for a recipe whose default is lora). Needs peft (the hfapps[peft] extra).",
            "choices": ["lora", "dora", "none"],
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA: rank of the adapter matrices."})
    lora_alpha: float = field(default=16, metadata={"help": "LoRA: scaling; the update is scaled by alpha / r."})
    lora_dropout: float = field(default=0.1, metadata={"help": "LoRA: dropout on the adapter's input."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "LoRA: names of the linear layers to adapt (e.g. query value), or all-linear; default: peft's "
            "choice for the architecture (query and value for BERT), else all-linear."
        },
    )

    def __post_init__(self) -> None:
        if self.peft == "none":
            self.peft = None
        if not self.model_name_or_path and not self.teacher:
            raise RecipeError("The recipe needs model_name_or_path: the model to fine-tune (a Hub id or a folder).")
        if self.peft is not None and self.teacher:
            raise RecipeError(
                "peft and teacher cannot be combined: distillation trains every weight of the "
                "student. Drop one of them."
            )
        if self.lora_r < 1 or not 0 <= self.lora_dropout < 1:
            raise RecipeError(
                f"lora_r must be at least 1 and lora_dropout in [0, 1), got {self.lora_r} and {self.lora_dropout}."
            )
        if self.student_layers is not None and not self.teacher:
            raise RecipeError(
                "student_layers is a distillation key: set teacher too (the model the student learns from)."
            )


def recipe_path(name: str) -> str:
    """A path, or the name of a shipped recipe ('sentiment' or 'sentiment.yaml')."""
    if os.path.isfile(name):
        return name
    shipped = os.path.join(RECIPES_DIR, name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if os.path.isfile(shipped):
        return shipped
    raise RecipeError(
        f"No recipe {name!r}: not a file, and not one of the shipped recipes ({', '.join(shipped_recipes())})."
    )


def shipped_recipes() -> dict[str, str]:
    """The recipes that ship inside hfapps: name -> path."""
    if not os.path.isdir(RECIPES_DIR):
        return {}
    return {f[:-5]: os.path.join(RECIPES_DIR, f) for f in sorted(os.listdir(RECIPES_DIR)) if f.endswith(".yaml")}


def read_recipe(path: str) -> dict[str, Any]:
    """The YAML mapping of a recipe file (safe_load: YAML tags that build Python objects are refused)."""
    try:
        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        raise RecipeError(f"{path} is not valid YAML (Python object tags are refused): {err}") from err
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise RecipeError(f"{path} must be a mapping of `key: value` lines, not a {type(config).__name__}.")
    return config


class _Parser(HfArgumentParser):
    def error(self, message: str):  # argparse would exit; a notebook user wants an exception
        raise RecipeError(f"Bad recipe value: {message}")


def _training_class(task: str) -> type[TrainingArguments]:
    if task not in TRAINING:
        raise RecipeError(f"Unknown task {task!r} in the recipe; choose one of {', '.join(TRAINING)}.")
    return TRAINING[task].arguments_class


def _as_argv(config: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for key, value in config.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        argv += [f"--{key}", *(str(v) for v in values)]
    return argv


def task_of(config: dict[str, Any], overrides: Sequence[str] = ()) -> str:
    """The recipe's `task:`, or the last `--task` override."""
    overrides = list(overrides)
    given = [overrides[i + 1] for i, a in enumerate(overrides[:-1]) if a == "--task"]
    task = given[-1] if given else config.get("task")
    if not task:
        raise RecipeError(f"The recipe has no `task:`; set one of {', '.join(TRAINING)}.")
    return str(task)


def parse(
    config: dict[str, Any], overrides: Sequence[str] = ()
) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """Parse a recipe mapping plus `--key value` overrides into the three dataclasses. What the recipe does not
    set comes from hfapps' recipe defaults, then the task's own."""
    task = task_of(config, overrides)
    classes = (ModelArguments, DataArguments, _training_class(task))
    known = {f.name for cls in classes for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in config if k not in known]
    if unknown:
        hints = "; ".join(
            f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, known, 1)) else repr(k)
            for k in unknown
        )
        raise RecipeError(
            f"Unknown recipe key(s): {hints}. Valid keys are the fields of ModelArguments, "
            f"DataArguments and {classes[2].__name__}: {', '.join(sorted(known))}."
        )
    refused = [key for key in COMMAND_LINE_ONLY if key in config]
    if refused:
        raise RecipeError(
            f"{', '.join(refused)} cannot be set in a recipe (a recipe may come from someone else, "
            f"and these delete folders or run code). Pass it on the command line, e.g. "
            f"--{refused[0]} true, or as a Python argument."
        )
    for key, value in config.items():
        if isinstance(value, dict):
            raise RecipeError(f"Recipe key {key!r} must be a scalar or a list, not a mapping.")
    parser = _Parser(classes)
    list_keys = {action.dest for action in parser._actions if action.nargs in ("+", "*")}
    for key, value in config.items():
        if isinstance(value, list) and key not in list_keys:
            raise RecipeError(f"Recipe key {key!r} takes one value, got a list: {value!r}.")
    config = {**RECIPE_DEFAULTS, **TRAINING[task].training_defaults, **config}
    try:
        parsed = parser.parse_args_into_dataclasses(
            args=_as_argv(config) + list(overrides), return_remaining_strings=True
        )
    except RecipeError:
        raise
    except (ValueError, TypeError) as err:
        raise RecipeError(f"Bad recipe value: {err}") from err
    *dataclass_values, remaining = parsed
    if remaining:
        raise RecipeError(
            f"Unknown command-line option(s) {remaining}; options are recipe keys, e.g. "
            "--learning_rate 3e-5 --train_file data.csv."
        )
    return tuple(dataclass_values)


def to_dict(*args: Any) -> dict[str, Any]:
    """The fully resolved recipe: every field of every dataclass, JSON/YAML-friendly."""
    resolved: dict[str, Any] = {}
    for arg in args:
        values = arg.to_dict() if hasattr(arg, "to_dict") else dataclasses.asdict(arg)
        resolved.update({k: v for k, v in values.items() if not k.startswith("_")})
    return resolved


def help_text() -> str:
    """`--help` for recipe keys: the same field metadata the parser uses. Seq2SeqTrainingArguments holds every
    TrainingArguments field plus the generation ones that summarization and translation recipes take."""
    parser = HfArgumentParser((ModelArguments, DataArguments, Seq2SeqTrainingArguments))
    parser.prog = "hfapps train RECIPE"
    return parser.format_help()
