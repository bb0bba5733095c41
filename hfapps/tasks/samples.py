"""hfapps' own sample data (hfapps/sample_data/), as the task modules read it: the rows an export is checked and
measured on, and the inputs int8 calibrates on (never the same rows), or a user's calibration file."""

from __future__ import annotations

import json
import os
from typing import Any

from ..data import SAMPLE_DIR, read_file
from ..errors import DataError

#: Where the default calibration inputs come from, as the model card says it.
SAMPLE_DATA = "hfapps' sample data"
#: How many sample texts (question-context pairs) an export is measured on; calibration uses the others.
CARD_TEXTS, CARD_QUESTIONS = 128, 48
#: The most rows of a calibration file read.
CALIBRATION_ROWS = 512


def column(file: str, name: str) -> list[str]:
    """One column of a sample data file."""
    return list(read_file(os.path.join(SAMPLE_DIR, file))[name])


def questions() -> list[dict[str, str]]:
    """Every question of the sample SQuAD file, with its paragraph: {"question", "context"}."""
    with open(os.path.join(SAMPLE_DIR, "qa.json"), encoding="utf-8") as handle:
        articles = json.load(handle)["data"]
    return [
        {"question": qa["question"], "context": p["context"]}
        for a in articles
        for p in a["paragraphs"]
        for qa in p["qas"]
    ]


def calibration_texts() -> list[str]:
    """English texts of 5 to 150 words that no export is measured on: reviews, news topics, short documents and
    encyclopedia paragraphs."""
    return (
        column("sentiment.csv", "text")[CARD_TEXTS : CARD_TEXTS + 200]
        + column("topics.csv", "text")[:200]
        + column("summarization.jsonl", "document")
        + sorted({q["context"] for q in questions()})
    )


def calibration_file(path: str | os.PathLike, fields: tuple[str, ...], task: str) -> list[Any]:
    """The first rows of a user's calibration file: texts from its "text" column, or tuples of `fields`."""
    needed = list(fields or ("text",))
    rows = read_file(os.fspath(path))
    missing = [name for name in needed if name not in rows.column_names]
    if missing:
        raise DataError(
            f"The calibration file {os.fspath(path)!r} has no {' or '.join(repr(m) for m in missing)} "
            f"column (it has {rows.column_names}); {task} calibrates on "
            f"{' and '.join(repr(n) for n in needed)} columns. Rename the column in the file, or pass "
            "another file."
        )
    if not len(rows):
        raise DataError(f"The calibration file {os.fspath(path)!r} holds no rows.")
    rows = rows.select(range(min(len(rows), CALIBRATION_ROWS)))
    inputs = list(zip(*(rows[name] for name in needed))) if fields else list(rows["text"])
    if not all(isinstance(v, str) and v.strip() for item in inputs for v in (item if fields else (item,))):
        raise DataError(
            f"The calibration file {os.fspath(path)!r} has empty or missing values in its first "
            f"{len(rows)} rows; drop or fill them."
        )
    return inputs
