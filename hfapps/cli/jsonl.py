"""Writing batch results as JSON Lines, and reading back what an interrupted run left.

Each output line is the input row, unchanged, plus the result's keys. A result key that the row already has
as a column is written as `pred_<key>` (`pred_label`, `pred_score`, ...), so an input `label` column (gold
labels, say) reaches the output intact beside the prediction.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

from ..errors import InputError

#: Put before a result key that the input row already has as a column.
RESULT_PREFIX = "pred_"


def result_record(row: dict[str, Any], result: Any) -> dict[str, Any]:
    """One output line: the input row plus the result's keys (or `result` for a list of results)."""
    record = dict(row)
    for key, value in result.items() if isinstance(result, dict) else [("result", result)]:
        while key in row:
            key = RESULT_PREFIX + key
        record[key] = value
    return record


def write_jsonl(path: str | None, rows: Iterable[dict[str, Any]], *, append: bool = False) -> int:
    """Write rows one line at a time, flushed, so an interrupted run leaves valid lines behind."""
    target = nullcontext(sys.stdout) if path in (None, "-") else open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115 (closed by the with below)
    count = 0
    with target as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()
            count += 1
    return count


def completed_rows(path: str) -> list[dict[str, Any]]:
    """The whole JSON lines of an output file that an interrupted run left; a last line cut off mid-write
    (a run killed while writing it) is removed from the file, so appending continues cleanly."""
    with open(path, "rb") as handle:
        data = handle.read()
    end = data.rfind(b"\n") + 1
    rows = []
    for number, line in enumerate(data[:end].decode("utf-8").splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise InputError(
                f"{path}:{number} is not a complete JSON line, so the file cannot be resumed; "
                "it was not written by hfapps or was edited."
            ) from err
    if end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(end)
    return rows


def check_resumable(path: str, done: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Every finished line of `path` must start with its input row, unchanged; else it holds another run."""
    if len(done) > len(rows):
        raise InputError(
            f"{path} holds {len(done)} results but the input has {len(rows)} rows, so it does not "
            "hold results for this input; choose another --output."
        )
    for number, (line, row) in enumerate(zip(done, rows), 1):
        if any(key not in line or line[key] != json.loads(json.dumps(value)) for key, value in row.items()):
            raise InputError(
                f"{path}:{number} does not match input row {number} (its input columns differ), so "
                "the file does not hold results for this input; choose another --output."
            )
