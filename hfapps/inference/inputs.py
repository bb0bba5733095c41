"""Checking what users pass to the helpers: one text, a list, or a stream of texts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

from ..errors import InputError

Shape = Literal["single", "list", "stream"]


def shape_of(inputs: Any, *, what: str = "texts") -> Shape:
    """Say how a helper's result must be shaped: one result, a list in input order, or a lazy stream."""
    if inputs is None:
        raise InputError(f"Got None for {what}; pass a string, a list of strings, or an iterable of strings.")
    if isinstance(inputs, (str, dict)):
        return "single"
    if isinstance(inputs, (list, tuple)):
        return "list"
    if isinstance(inputs, bytes):
        raise InputError(f"Got bytes for {what}; decode them first, e.g. data.decode('utf-8').")
    if isinstance(inputs, Iterable):
        return "stream"
    raise InputError(
        f"Cannot use a {type(inputs).__name__} as {what}; pass a string, a list of strings, "
        "or an iterable of strings (a generator, a datasets column)."
    )


def check_text(text: Any, index: int | None = None, *, what: str = "text") -> str:
    """Return `text` if it is a non-empty string, else raise an InputError naming where it was."""
    where = "" if index is None else f" at index {index}"
    if not isinstance(text, str):
        hint = " (a missing value in your data?)" if text is None else ""
        raise InputError(f"The {what}{where} is a {type(text).__name__}{hint}; every {what} must be a string.")
    if not text.strip():
        raise InputError(
            f"The {what}{where} is empty or whitespace only; drop or fill empty rows before calling hfapps."
        )
    return text


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield lists of up to `size` items from any iterable, without reading ahead further."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
