"""Reading inputs for batch runs (JSONL, JSON, CSV, TSV, TXT) and writing results as JSONL."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from .errors import InputError

FORMATS = (".jsonl", ".json", ".csv", ".tsv", ".txt")


def read_records(path: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of `path` as dicts; each must have `columns` (a .txt file gives one `columns[0]` per line)."""
    if not os.path.isfile(path):
        raise InputError(f"Input file {path!r} does not exist.")
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise InputError(f"Cannot read {path!r}: use one of {', '.join(FORMATS)}.")
    with open(path, encoding="utf-8", newline="") as handle:
        if ext == ".txt":
            rows = [{columns[0]: line.rstrip("\n")} for line in handle if line.strip()]
        elif ext == ".jsonl":
            rows = [_json_line(line, path, n) for n, line in enumerate(handle, 1) if line.strip()]
        elif ext == ".json":
            data = json.load(handle)
            rows = data if isinstance(data, list) else data.get("data", [])
        else:
            rows = list(csv.DictReader(handle, delimiter="\t" if ext == ".tsv" else ","))
    if rows:
        missing = [c for c in columns if c not in rows[0]]
        if missing:
            raise InputError(f"{path!r} has no column {missing[0]!r}; its columns are {sorted(rows[0])}. "
                             "Name the right one with --text-column (or --question-column/--context-column).")
    return rows


def _json_line(line: str, path: str, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{number} is not valid JSON: {err}") from err
    if not isinstance(row, dict):
        raise InputError(f"{path}:{number} must be a JSON object, got {type(row).__name__}.")
    return row


def result_record(record: dict[str, Any], result: Any) -> dict[str, Any]:
    """One output line: the input row plus the result's keys (or `result` for a list of results)."""
    return {**record, **result} if isinstance(result, dict) else {**record, "result": result}


def write_jsonl(path: str | None, rows: Iterator[dict[str, Any]], *, append: bool = False) -> int:
    """Write rows one line at a time, flushed, so an interrupted run leaves valid lines behind."""
    handle = sys.stdout if path in (None, "-") else open(path, "a" if append else "w", encoding="utf-8")
    count = 0
    try:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            handle.flush()
            count += 1
    finally:
        if handle is not sys.stdout:
            handle.close()
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
            raise InputError(f"{path}:{number} is not a complete JSON line, so the file cannot be resumed; "
                             "it was not written by hfapps or was edited.") from err
    if end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(end)
    return rows
