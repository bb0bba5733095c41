"""The retrieval helpers: `embed` (vectors of texts) and `rerank` (a query's documents, best first).

They follow the other helpers (`hfapps.api`): the model is loaded once and kept, one text in gives one result,
a list a list in input order (for `embed`, one 2-D array), any other iterable a lazy stream.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from typing_extensions import Unpack

from ..api import Settings, _run
from ..errors import InputError
from ..tasks import embedding as _embedding  # noqa: F401  (registers the task)
from ..tasks import reranking as _reranking  # noqa: F401  (registers the task)

ModelArg = str | os.PathLike[str] | None


def embed(
    texts: str | Iterable[str],
    *,
    model: ModelArg = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
    **settings: Unpack[Settings],
) -> Any:
    """One float32 vector for one text; a (texts, dimension) array for a list; a stream of vectors otherwise.

    `model`: a sentence-transformers model (its pooling and normalisation are read from its folder) or any
    encoder (mean pooling); default: the packaged all-MiniLM-L6-v2, 384 dimensions, unit length.
    `prompt_name`: one of the model's prompts ("query", "document"); `prompt`: your own text before each input.

    >>> hfapps.embed(["a cat", "a dog"]).shape   # (2, 384)
    """
    found = _run("embedding", texts, model, dict(settings), {"prompt_name": prompt_name, "prompt": prompt})
    if isinstance(texts, str):
        return np.asarray(found, dtype=np.float32)
    if isinstance(found, list):
        return np.asarray(found, dtype=np.float32) if found else np.zeros((0, 0), dtype=np.float32)
    return (np.asarray(vector, dtype=np.float32) for vector in found)


def rerank(
    query: str,
    documents: list[str] | tuple[str, ...],
    *,
    model: ModelArg = None,
    top_k: int | None = None,
    **settings: Unpack[Settings],
) -> list[dict[str, Any]]:
    """`{"index", "score", "text"}` per document, best first (the `top_k` best; None: all), scored by a
    cross-encoder reading the query and each document together. `index` is the document's place in `documents`."""
    if not isinstance(query, str):
        raise InputError(f"rerank takes one query string, got {type(query).__name__}.")
    if isinstance(documents, str) or not isinstance(documents, (list, tuple)):
        raise InputError("rerank takes a list of documents (strings).")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise InputError(f"top_k must be a positive integer or None, got {top_k!r}.")
    scores = _run("reranking", [{"query": query, "document": d} for d in documents], model, dict(settings), {})
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ranked = [{"index": int(i), "score": float(scores[i]), "text": documents[i]} for i in order]
    return ranked[:top_k] if top_k else ranked
