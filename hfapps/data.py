"""Loading training and evaluation data: a Hub dataset or local files, checked before training starts.

Local files: CSV, TSV, JSON, JSONL, Parquet; SQuAD-format JSON (`{"data": [{"paragraphs": ...}]}`)
is flattened to one row per question. No validation split -> a seeded split of train.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import datasets
from datasets import Dataset, DatasetDict

from .config import DataArguments
from .errors import HfappsError

BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


class DataError(HfappsError, ValueError):
    """Training or evaluation data that cannot be used as the recipe says."""


def _is_squad(path: str) -> bool:
    if not path.endswith(".json"):
        return False
    with open(path, encoding="utf-8") as handle:
        head = handle.read(200).lstrip()
    if not head.startswith("{"):
        return False
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return isinstance(data, dict) and isinstance(data.get("data"), list) and bool(data["data"]) and \
        "paragraphs" in data["data"][0]


def read_squad(path: str) -> Dataset:
    """SQuAD v1.1/v2.0 JSON as rows of id, title, context, question, answers{text, answer_start}."""
    with open(path, encoding="utf-8") as handle:
        articles = json.load(handle)["data"]
    rows: dict[str, list[Any]] = {k: [] for k in ("id", "title", "context", "question", "answers")}
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows["id"].append(str(qa["id"]))
                rows["title"].append(article.get("title", ""))
                rows["context"].append(paragraph["context"])
                rows["question"].append(qa["question"])
                rows["answers"].append({"text": [a["text"] for a in qa["answers"]],
                                        "answer_start": [int(a["answer_start"]) for a in qa["answers"]]})
    return Dataset.from_dict(rows)


def load_file(path: str, args: DataArguments) -> Dataset:
    if not os.path.isfile(path):
        raise DataError(f"Data file {path!r} does not exist (looked in {os.path.abspath(path)!r}).")
    ext = os.path.splitext(path)[1].lower()
    if ext not in BUILDERS:
        raise DataError(f"Cannot read {path!r}: data files must be {', '.join(BUILDERS)}.")
    if _is_squad(path):
        return read_squad(path)
    kwargs: dict[str, Any] = {}
    if ext == ".tsv":
        kwargs["delimiter"] = "\t"
        kwargs["quoting"] = 3  # csv.QUOTE_NONE: TSV text keeps its quotes
    if ext in (".csv", ".tsv") and args.column_names:
        kwargs["column_names"] = args.column_names
    try:
        return datasets.load_dataset(BUILDERS[ext], data_files=path, split="train", **kwargs)
    except Exception as err:  # datasets raises many kinds; the user needs the file and the reason
        raise DataError(f"Could not read {path!r}: {err}") from err


def _plain_strings(dataset: Dataset) -> Dataset:
    """CSV/Parquet give large_string, JSON string; make them alike so splits and files combine."""
    for name, feature in dataset.features.items():
        if isinstance(feature, datasets.Value) and feature.dtype == "large_string":
            dataset = dataset.cast_column(name, datasets.Value("string"))
    return dataset


SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample_data")


def load_sample(args: DataArguments) -> Dataset:
    """hfapps' own sample data for the recipe's task, its columns renamed to the recipe's column names."""
    def read(name: str) -> Dataset:
        return _plain_strings(load_file(os.path.join(SAMPLE_DIR, name), args))

    task = args.task
    if task in ("sentiment", "classification"):
        data = read("sentiment.csv" if task == "sentiment" else "topics.csv")
        renames = {"text": args.text_column, "label": args.label_column}
    elif task == "question-answering":
        data = read("qa.json")
        renames = {"question": args.question_column, "context": args.context_column, "answers": args.answers_column}
    elif task == "summarization":
        data = read("summarization.jsonl")
        renames = {"document": args.text_column, "summary": args.summary_column}
    elif task == "translation":
        if (args.source_lang, args.target_lang) not in (("en", "de"), ("de", "en")):
            raise DataError("The sample translation data is English-German: pass --source_lang en --target_lang de.")
        return read("translation_en_de.jsonl")
    elif task == "mlm":
        texts = [*read("sentiment.csv")["text"], *read("topics.csv")["text"], *read("summarization.jsonl")["document"]]
        return Dataset.from_dict({args.text_column: texts})
    else:
        raise DataError(f"hfapps has no sample data for task {task!r}.")
    keep = [c for c in data.column_names if c in renames]
    data = data.select_columns(keep)
    renames = {old: new for old, new in renames.items() if old != new}
    return data.rename_columns(renames) if renames else data


def load_splits(args: DataArguments, seed: int = 42) -> DatasetDict:
    """train / validation / (test) from the recipe's files or Hub dataset, sampled and split as it says.

    `dataset_name: sample` is hfapps' own small sample data for the task (hfapps/sample_data/).
    """
    if args.dataset_name == "sample":
        splits = {"train": load_sample(args)}
    elif args.dataset_name:
        try:
            raw = datasets.load_dataset(args.dataset_name, args.dataset_config_name)
        except Exception as err:
            raise DataError(f"Could not load the dataset {args.dataset_name!r}: {err}. Offline, pass local files "
                            "(train_file, validation_file) instead.") from err
        splits = {name: split for name, split in raw.items() if name in args.splits}
    else:
        files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
        if not files["train"]:
            raise DataError("The recipe gives no data: set train_file (and validation_file) or dataset_name.")
        splits = {name: load_file(path, args) for name, path in files.items() if path}
    if "train" not in splits:
        raise DataError(f"The data has no train split; it has {sorted(splits)}.")
    splits = {name: _plain_strings(ds) for name, ds in splits.items()}
    if "validation" not in splits:
        if len(splits["train"]) < 2:
            raise DataError("The train split has fewer than 2 rows, so no validation split can be held out.")
        held = splits["train"].train_test_split(test_size=args.validation_split_percentage / 100, seed=seed)
        splits["train"], splits["validation"] = held["train"], held["test"]
    limits = {"train": args.max_train_samples, "validation": args.max_eval_samples, "test": args.max_test_samples}
    for name, limit in limits.items():
        if limit is not None and name in splits:
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    for name, split in splits.items():
        if len(split) == 0:
            raise DataError(f"The {name} split is empty.")
    return DatasetDict(splits)


def require_columns(splits: DatasetDict, columns: Iterable[str]) -> None:
    """Raise, naming the columns there are, when a split lacks a column the recipe maps."""
    for name, split in splits.items():
        for column in columns:
            if column not in split.column_names:
                raise DataError(f"The {name} split has no column {column!r}; its columns are {split.column_names}. "
                                "Map the right one in the recipe (e.g. text_column: review).")


def require_text(split: Dataset, column: str, split_name: str) -> None:
    """Every value of a text column must be a non-empty string."""
    for index, value in enumerate(split[column]):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"Row {index} of the {split_name} split has no text in {column!r} (got {value!r}); "
                            "drop or fill such rows.")
