"""What a task adds to the one training runner (`hfapps.train`): its model class, how its examples
are checked and tokenised, its collator and Trainer, and how its predictions are scored.

Each task module holds one subclass of `TaskTraining`; the runner reads top to bottom without
knowing which task it runs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from datasets import Dataset, DatasetDict
from transformers import DataCollatorWithPadding, Trainer

from ..config import DataArguments


class TaskTraining:
    """Defaults suit encoder tasks; seq2seq, QA and MLM override what differs."""

    #: transformers Auto class the model is loaded with.
    auto_model: ClassVar[type]
    trainer_class: ClassVar[type] = Trainer
    #: The metric early stopping and best-checkpoint selection look at, and its direction.
    best_metric: ClassVar[str] = "eval_loss"
    greater_is_better: ClassVar[bool] = False
    #: TrainingArguments defaults for this task (a recipe's own keys win). The loss of classification
    #: and QA heads ignores the token count the Trainer passes under DDP, which doubles it (FACTS.md).
    training_defaults: ClassVar[dict[str, Any]] = {
        "average_tokens_across_devices": False,
        "ddp_find_unused_parameters": False,
    }
    #: The helper task that scores a trained model (None: no helper, e.g. MLM).
    helper_task: ClassVar[str | None] = None

    def __init__(self, args: DataArguments) -> None:
        self.args = args

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

    def meta(self, tokenizer, model_config) -> dict[str, Any]:
        """Task settings saved as hfapps.json beside the model, for the helper that loads it."""
        return {}

    # -- scoring a trained model with its helper (the code `hfapps evaluate` runs) ---------------

    def scorable(self) -> bool:
        """Whether this task's helper can score the recipe's data (not, e.g., sentence pairs)."""
        return self.helper_task is not None

    def helper_inputs(self, split: Dataset) -> list[Any]:
        return list(split[self.args.text_column])

    def helper_options(self) -> dict[str, Any]:
        return {}

    def score(self, predictions: list[Any], split: Dataset, model_config) -> dict[str, Any]:
        raise NotImplementedError
