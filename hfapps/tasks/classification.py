"""Text classification with a fine-tuned head: any `...ForSequenceClassification` model, labels from its config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from datasets import Dataset, DatasetDict
from transformers import AutoModelForSequenceClassification, pipeline

from .. import metrics, models
from ..data import require_text
from ..errors import DataError, InputError
from .base import Task
from .call_options import OptionInfo, option
from .registry import TASKS, register
from .training import TaskTraining


@dataclass(frozen=True)
class ClassificationOptions:
    top_k: int | None = option(
        1,
        minimum=1,
        help="how many labels per text, best first: 1 gives one {label, score}, N a list "
        "of the N best, None all of them",
    )


class ClassificationTraining(TaskTraining):
    """Fine-tune a sequence classifier: accuracy, macro precision/recall/F1, per class, confusion matrix."""

    peft_task_type = "SEQ_CLS"
    distillable = True

    auto_model = AutoModelForSequenceClassification
    sample_file = "topics.csv"
    sample_columns = {"text": "text_column", "label": "label_column"}

    def columns(self) -> list[str]:
        pair = [self.args.text_pair_column] if self.args.text_pair_column else []
        return [self.args.text_column, *pair, self.args.label_column]

    def check(self, splits: DatasetDict) -> None:
        for name, split in splits.items():
            require_text(split, self.args.text_column, name)
        values = splits["train"][self.args.label_column]
        if self.args.label_list:
            self.labels = list(self.args.label_list)
        elif all(isinstance(v, str) for v in values):
            self.labels = sorted(set(values))
        else:
            self.labels = [str(v) for v in sorted(set(values))]
        if len(self.labels) < 2:
            raise DataError(f"The train split has one label only ({self.labels}); a classifier needs two or more.")
        for name, split in splits.items():
            bad = sorted({repr(v) for v in split[self.args.label_column] if self._index(v) is None})
            if bad:
                raise DataError(
                    f"The {name} split has labels outside the label set {self.labels}: "
                    f"{', '.join(bad[:10])}. Fix the data or set label_list in the recipe."
                )

    def _index(self, value: Any) -> int | None:
        """A label value (a name, or an index into the label list) as its index."""
        if str(value) in self.labels:
            return self.labels.index(str(value))
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(self.labels):
            return value
        return None

    def model_kwargs(self) -> dict[str, Any]:
        return {
            "num_labels": len(self.labels),
            "id2label": dict(enumerate(self.labels)),
            "label2id": {label: i for i, label in enumerate(self.labels)},
        }

    def tokenize(self, split: Dataset, tokenizer, model_config) -> Dataset:
        text, pair, label = self.args.text_column, self.args.text_pair_column, self.args.label_column

        def encode(batch):
            encoded = tokenizer(
                batch[text], batch[pair] if pair else None, truncation=True, max_length=self.args.max_seq_length
            )
            encoded["labels"] = [self._index(v) for v in batch[label]]
            return encoded

        return self.encoded(split, encode, tokenizer)

    def compute_metrics(self):
        accuracy, prf = metrics.load("accuracy"), metrics.load("precision_recall_f1")

        def compute(prediction):
            predicted = prediction.predictions.argmax(-1).tolist()
            references = prediction.label_ids.tolist()
            scores = prf.compute(predictions=predicted, references=references, num_labels=len(self.labels))
            return {
                **accuracy.compute(predictions=predicted, references=references),
                "precision": scores["precision"],
                "recall": scores["recall"],
                "f1": scores["f1"],
            }

        return compute

    def scorable(self) -> bool:
        # The helpers take single texts; sentence-pair models are scored by the Trainer's evaluation.
        return super().scorable() and not self.args.text_pair_column

    def score(self, predictions: list[Any], split: Dataset, model_config) -> dict[str, Any]:
        self.labels = [model_config.id2label[i] for i in range(len(model_config.id2label))]
        references = [self._index(v) for v in split[self.args.label_column]]
        if None in references:
            bad = split[self.args.label_column][references.index(None)]
            raise DataError(f"Label {bad!r} is not one of the model's labels {self.labels}.")
        predicted = [self.labels.index(p["label"]) for p in predictions]
        scores = metrics.load("precision_recall_f1").compute(
            predictions=predicted, references=references, num_labels=len(self.labels)
        )
        matrix = metrics.load("confusion_matrix").compute(
            predictions=predicted, references=references, num_labels=len(self.labels)
        )
        return {
            **metrics.load("accuracy").compute(predictions=predicted, references=references),
            "precision": scores["precision"],
            "recall": scores["recall"],
            "f1": scores["f1"],
            "per_class": {self.labels[i]: v for i, v in scores["per_class"].items()},
            "labels": self.labels,
            **matrix,
        }


@register
class Classification(Task):
    """Wraps transformers' `text-classification` pipeline with length-sorted batches.

    `top_k=1` (default) gives one `{"label", "score"}` per text; `top_k=N` or `None` gives a list of
    the N best (or all) labels, best first. With `labels=[...]` the call is zero-shot classification.
    """

    name = "classification"
    aliases = ("text-classification",)
    command = "classify"
    default_model = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
    options = ClassificationOptions
    training = ClassificationTraining
    #: The task a call with `labels=` becomes.
    zero_shot: ClassVar[str | None] = "zero-shot"
    export_format = "onnx"
    agreement_key = "label"

    @classmethod
    def claims(cls, config: Any) -> int:
        """A classifier exports as classification unless the task is named (or the model was trained for one)."""
        if cls is not Classification:
            return 0
        return (
            1 if models.model_kind(config) == "encoder" and models.has_head(config, "ForSequenceClassification") else 0
        )

    @classmethod
    def export_auto_class(cls, config: Any) -> type:
        return AutoModelForSequenceClassification

    @classmethod
    def variant(cls, options: dict[str, Any]) -> type[Task]:
        return TASKS[cls.zero_shot] if cls.zero_shot and options.get("labels") is not None else cls

    @classmethod
    def option_infos(cls) -> list[OptionInfo]:
        own = super().option_infos()
        if not cls.zero_shot:
            return own
        names = {info.name for info in own}
        return own + [info for info in TASKS[cls.zero_shot].option_infos() if info.name not in names]

    def _build(self, *, allow_pickle: bool) -> None:
        models.require_head(
            self.config,
            self.ref,
            suffixes=("ForSequenceClassification",),
            task="text-classification",
            hint="Pass a fine-tuned classifier, fine-tune this one with `hfapps train recipes/classification.yaml`, "
            "or pass labels=[...] for zero-shot classification.",
        )
        model = self._load(AutoModelForSequenceClassification, allow_pickle=allow_pickle)
        self.pipeline = pipeline("text-classification", model=model, tokenizer=self.tokenizer, device=self.device)

    def _predict(self, batch: list[str], options: ClassificationOptions) -> list[Any]:
        top_k = options.top_k
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a positive int or None (all labels), got {top_k!r}.")
        outputs = self.pipeline(batch, batch_size=len(batch), top_k=top_k, truncation=True)
        return [out[0] if top_k == 1 else out for out in outputs]
