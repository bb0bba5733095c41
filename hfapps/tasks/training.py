"""What a task adds to the one training runner (`hfapps.train`): its model class, how its examples
are checked and tokenised, its collator and Trainer, and how its predictions are scored.

Each task module holds one subclass of `TaskTraining`; the runner reads top to bottom without
knowing which task it runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

from datasets import Dataset, DatasetDict
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from ..data import SAMPLE_DIR, read_file, require_text
from ..errors import DataError
from .arguments import DataArguments


def fingerprint(split: Dataset, *settings: Any) -> str:
    """A datasets fingerprint for what a transform makes of `split` with `settings` (JSON-able), given to `map` so
    that datasets does not hash the transform's function."""
    return hashlib.sha256(json.dumps([split._fingerprint, *settings]).encode()).hexdigest()[:16]


class TaskTraining:
    """Defaults suit encoder tasks; seq2seq, QA and MLM override what differs."""

    #: The recipe `task:` of a task that has no helper (mlm); a helper task's training takes its name.
    name: ClassVar[str | None] = None
    #: transformers Auto class the model is loaded with.
    auto_model: ClassVar[type]
    trainer_class: ClassVar[type] = Trainer
    #: The run's training arguments, set by the runner before data loads: a task's own recipe keys live there.
    training_args: Any = None
    #: What `peft` calls this kind of model (its TaskType), so that a LoRA run also trains the task's new head.
    peft_task_type: ClassVar[str | None] = None
    #: The training-arguments dataclass of this task's recipes.
    arguments_class: ClassVar[type[TrainingArguments]] = TrainingArguments
    #: TrainingArguments defaults for this task (a recipe's own keys win). The loss of classification
    #: and QA heads ignores the token count the Trainer passes under DDP, which doubles it (FACTS.md).
    training_defaults: ClassVar[dict[str, Any]] = {
        "average_tokens_across_devices": False,
        "ddp_find_unused_parameters": False,
    }
    #: The helper task that runs what this trains (set by `register`); None for a task with no helper (mlm).
    helper: ClassVar[type | None] = None
    #: Whether a student can learn this task from a teacher's class distribution (`teacher:` in a recipe).
    distillable: ClassVar[bool] = False
    #: hfapps' sample data for `--dataset_name sample`: a file in hfapps/sample_data, and which of the recipe's
    #: column settings each of its columns takes (e.g. {"text": "text_column"}).
    sample_file: ClassVar[str | None] = None
    sample_columns: ClassVar[dict[str, str]] = {}

    def __init__(self, args: DataArguments) -> None:
        self.args = args

    def encoded(self, split: Dataset, encode: Any, tokenizer: Any) -> Dataset:
        """`split` through `encode` (a batched function of this task's columns), its own columns removed. The
        result's fingerprint is derived from the split's, the task's settings and the tokenizer's name and size,
        so datasets never hashes `encode` itself: dill pickles a closure with everything it reaches, and where it
        could not find a task class by reference it pickled the class by value, for minutes per call."""
        settings = {key: repr(value) for key, value in sorted(vars(self.args).items())}
        tokenizer_key = [getattr(tokenizer, "name_or_path", ""), len(tokenizer), type(tokenizer).__name__]
        return split.map(
            encode,
            batched=True,
            remove_columns=split.column_names,
            num_proc=self.args.preprocessing_num_workers,
            desc="Tokenizing",
            new_fingerprint=fingerprint(split, type(self).__qualname__, settings, tokenizer_key),
        )

    def load_sample(self) -> Dataset:
        """hfapps' sample data for this task, its columns renamed to the recipe's column names."""
        if self.sample_file is None:
            raise DataError(f"hfapps has no sample data for task {self.args.task!r}.")
        data = read_file(f"{SAMPLE_DIR}/{self.sample_file}")
        data = data.select_columns([c for c in data.column_names if c in self.sample_columns])
        renames = {old: getattr(self.args, setting) for old, setting in self.sample_columns.items()}
        renames = {old: new for old, new in renames.items() if old != new}
        return data.rename_columns(renames) if renames else data

    def prepare(self, splits: DatasetDict) -> DatasetDict:
        """Reshape raw splits into the columns this task reads (e.g. flatten a nested column)."""
        return splits

    def columns(self) -> list[str]:
        """The data columns the recipe maps; each split must have them."""
        return [self.args.text_column]

    def check(self, splits: DatasetDict) -> None:
        """Task-specific checks on the raw data, before anything is loaded or trained."""

    def model_kwargs(self) -> dict[str, Any]:
        """Extra config settings for `from_pretrained` (labels, ...)."""
        return {}

    def configure(self, model) -> None:
        """Adjust the loaded model before training (e.g. its generation settings)."""

    def tokenize(self, split: Dataset, tokenizer, model_config) -> Dataset:
        raise NotImplementedError

    def collator(self, tokenizer, model):
        return DataCollatorWithPadding(tokenizer)

    def compute_metrics(self):
        """A `compute_metrics` for the Trainer's evaluations, or None (loss only)."""
        return None

    def evaluation_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The Trainer's final evaluation, with what this task derives from it (e.g. perplexity from the loss)."""
        return metrics

    def meta(self, tokenizer, model_config) -> dict[str, Any]:
        """Task settings saved as hfapps.json beside the model, for the helper that loads it."""
        return {}

    # -- scoring a trained model with its helper (the code `hfapps evaluate` runs) ---------------

    def scorable(self) -> bool:
        """Whether this task's helper can score the recipe's data (not, e.g., sentence pairs)."""
        return self.helper is not None

    def helper_inputs(self, split: Dataset) -> list[Any]:
        return list(split[self.args.text_column])

    def helper_options(self) -> dict[str, Any]:
        """Call options for the helper that scores the model. Settings the model was trained with (QA windows,
        generation length) are saved beside it and read by the helper itself, so that `hfapps evaluate` and a
        run's own metrics.json score alike."""
        return {}

    def score(self, predictions: list[Any], split: Dataset, model_config) -> dict[str, Any]:
        raise NotImplementedError


class UnlabelledTextTraining(TaskTraining):
    """What language-model pre-training shares (masked and causal): unlabelled text in the recipe's text column,
    and for `--dataset_name sample` every text of hfapps' sample data."""

    def load_sample(self) -> Dataset:
        texts = [
            *read_file(f"{SAMPLE_DIR}/sentiment.csv")["text"],
            *read_file(f"{SAMPLE_DIR}/topics.csv")["text"],
            *read_file(f"{SAMPLE_DIR}/summarization.jsonl")["document"],
        ]
        return Dataset.from_dict({self.args.text_column: texts})

    def check(self, splits: DatasetDict) -> None:
        for name, split in splits.items():
            require_text(split, self.args.text_column, name)
