"""Reading data files, for training, evaluation and batch runs alike, and checking their columns.

One reader, on `datasets`: CSV, TSV, JSON (a list of rows, or SQuAD's `{"data": [{"paragraphs": ...}]}`, flattened
to one row per question), JSONL, Parquet and TXT (one text per line). A recipe's splits are made from these in
`hfapps.training.splits`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from typing import Any

import datasets
from datasets import Dataset, DatasetDict

from .errors import DataError

BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}
SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample_data")


def read_squad(articles: list[dict[str, Any]]) -> Dataset:
    """SQuAD v1.1/v2.0 articles as rows of id, title, context, question, answers{text, answer_start}."""
    rows: dict[str, list[Any]] = {k: [] for k in ("id", "title", "context", "question", "answers")}
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows["id"].append(str(qa["id"]))
                rows["title"].append(article.get("title", ""))
                rows["context"].append(paragraph["context"])
                rows["question"].append(qa["question"])
                rows["answers"].append(
                    {
                        "text": [a["text"] for a in qa["answers"]],
                        "answer_start": [int(a["answer_start"]) for a in qa["answers"]],
                    }
                )
    return Dataset.from_dict(rows)


def read_file(
    path: str, *, text_column: str = "text", column_names: list[str] | None = None, as_strings: bool = False
) -> Dataset:
    """The rows of a data file as a `Dataset`.

    A .txt file gives one row per non-empty line, in `text_column`. `column_names` names the columns of a
    CSV/TSV without a header row. `as_strings` reads every CSV/TSV value as the text it is ("007" stays
    "007", an empty cell stays ""), so that batch runs write their input columns back unchanged.
    """
    if not os.path.isfile(path):
        raise DataError(f"The file {path!r} does not exist (looked in {os.path.abspath(path)!r}).")
    ext = os.path.splitext(path)[1].lower()
    if ext not in BUILDERS:
        raise DataError(f"Cannot read {path!r}: data files must be {', '.join(BUILDERS)} (or SQuAD-format .json).")
    kwargs: dict[str, Any] = {}
    if ext == ".json":
        with open(path, encoding="utf-8") as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path!r} is not valid JSON ({err}); JSON Lines files take the .jsonl ending."
                ) from err
        if isinstance(data, dict) and _is_squad(data):
            return read_squad(data["data"])
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            kwargs["field"] = "data"
            data = data["data"]
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise DataError(
                f'{path!r} must hold a JSON list of rows ([{{"text": ...}}, ...]), SQuAD-format '
                f'data or {{"data": [rows]}}; it holds a {type(data).__name__}'
                + (f" with keys {sorted(data)[:10]}" if isinstance(data, dict) else "")
                + "."
            )
        if not data:
            raise DataError(f"{path!r} holds no rows.")
    if ext in (".csv", ".tsv"):
        if ext == ".tsv":
            kwargs.update(delimiter="\t", quoting=csv.QUOTE_NONE)  # TSV text keeps its quotes
        if column_names:
            kwargs["column_names"] = column_names
        if as_strings:
            header = column_names or _csv_header(path, "\t" if ext == ".tsv" else ",")
            kwargs.update(
                features=datasets.Features({name: datasets.Value("string") for name in header}),
                keep_default_na=False,
                na_filter=False,
            )
    try:
        dataset = datasets.load_dataset(BUILDERS[ext], data_files=path, split="train", **kwargs)
    except Exception as err:  # datasets raises many kinds; the user needs the file and the reason
        raise DataError(f"Could not read {path!r}: {err}") from err
    if ext == ".txt":
        dataset = dataset.filter(lambda row: bool(row["text"].strip()))
        if text_column != "text":
            dataset = dataset.rename_column("text", text_column)
    return plain_strings(dataset)


def _is_squad(data: dict[str, Any]) -> bool:
    articles = data.get("data")
    return (
        isinstance(articles, list) and bool(articles) and isinstance(articles[0], dict) and "paragraphs" in articles[0]
    )


def _csv_header(path: str, delimiter: str) -> list[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle, delimiter=delimiter), [])


def plain_strings(dataset: Dataset) -> Dataset:
    """CSV/Parquet give large_string, JSON string; make them alike so splits and files combine."""
    for name, feature in dataset.features.items():
        if isinstance(feature, datasets.Value) and feature.dtype == "large_string":
            dataset = dataset.cast_column(name, datasets.Value("string"))
    return dataset


def require_columns(splits: DatasetDict, columns: Iterable[str]) -> None:
    """Raise, naming the columns there are, when a split lacks a column the recipe maps."""
    for name, split in splits.items():
        for column in columns:
            if column not in split.column_names:
                raise DataError(
                    f"The {name} split has no column {column!r}; its columns are {split.column_names}. "
                    "Map the right one in the recipe (e.g. text_column: review)."
                )


def require_text(split: Dataset, column: str, split_name: str) -> None:
    """Every value of a text column must be a non-empty string."""
    for index, value in enumerate(split[column]):
        if not isinstance(value, str) or not value.strip():
            raise DataError(
                f"Row {index} of the {split_name} split has no text in {column!r} (got {value!r}); "
                "drop or fill such rows."
            )
