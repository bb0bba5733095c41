"""`hfapps.ask`: answers from your own documents. Retrieve (hybrid search), optionally rerank, then read.

    hfapps.ask("When was the tower finished?", index="my_index", reader="runs/qa")

The reader is an extractive QA model (the answer is a span of one retrieved passage: its id and character offsets
in that passage come with it) or a causal chat model, which writes the answer from the passages and cites them by
id in square brackets. The chat path is `_generate`, one function, so that the language-model family's chat
machinery can replace it without touching the rest.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .. import models
from ..api import load
from ..errors import InputError
from ..inference.inputs import check_text
from ..tasks.base import Task
from .index import Index

#: How a chat reader is asked; the passages follow, each as "[id] text".
CHAT_PROMPT = (
    "Answer the question using only the passages below. After each fact, cite the passage it comes from by its "
    "id in square brackets, like [id]. If the passages do not hold the answer, say that you do not know.\n\n"
    "{passages}\n\nQuestion: {question}"
)


def ask(
    question: str,
    *,
    index: Index | str | os.PathLike[str],
    reader: str | os.PathLike[str] | Task | None = None,
    k: int = 5,
    mode: str = "hybrid",
    filter: str | dict[str, Any] | None = None,
    rerank: str | os.PathLike[str] | Task | None = None,
    rerank_depth: int = 50,
    max_new_tokens: int = 128,
) -> dict[str, Any]:
    """`{"question", "answer", "score", "sources", ...}` for one question, from the `k` best passages of `index`.

    Extractive reader (default: the SQuAD DistilBERT of `hfapps.answer`): the best-scoring span over the passages,
    with `id` (its passage), `start` and `end` (character offsets in that passage's text). Chat reader (a causal
    LM): `answer` written from the passages and `citations`, the passage ids it cites. `sources` are the passages
    read, best first (`{"id", "text", "score", "metadata"}`)."""
    question = check_text(question, what="question")
    if not isinstance(k, int) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}.")
    own = not isinstance(index, Index)
    opened = Index(index) if not isinstance(index, Index) else index
    try:
        hits = opened.search(question, k=k, mode=mode, filter=filter, rerank=rerank, rerank_depth=rerank_depth)
    finally:
        if own:
            opened.close()
    assert isinstance(hits, list)
    hits = [hit for hit in hits if isinstance(hit, dict)]  # one query: one list of hits
    found: dict[str, Any] = {"question": question, "answer": None, "score": 0.0, "sources": hits}
    if not hits:
        return found
    task = _reader(reader)
    if task.name == "question-answering":
        return {**found, **_extract(task, question, hits)}
    return {**found, **_generate(task, question, hits, max_new_tokens=max_new_tokens)}


def _reader(reader: str | os.PathLike[str] | Task | None) -> Task:
    if isinstance(reader, Task):
        return reader
    if reader is None:
        return load("question-answering")
    ref, config = models.resolve(os.fspath(reader))
    if models.model_kind(config) == "causal":
        return load("summarization", os.fspath(reader))  # its chat path: a causal model through its chat template
    return load("question-answering", os.fspath(reader))


def _extract(task: Task, question: str, hits: list[dict[str, Any]]) -> dict[str, Any]:
    """The best span over all passages (each read in its own windows), with where it stands.

    An extractive reader's score is a probability within one passage: a passage without the answer still offers
    a confident span. So each span's score is weighed by its passage's place in the ranking, 1 / (rank + 1) as in
    reciprocal rank fusion: a later passage wins only with a span that many times surer than the first one's.
    `score` is the chosen span's own probability."""
    answers = task([{"question": question, "context": hit["text"]} for hit in hits])
    best = max(range(len(hits)), key=lambda i: answers[i]["score"] / (i + 1))
    answer = answers[best]
    return {
        "answer": answer["answer"],
        "score": float(answer["score"]),
        "id": hits[best]["id"],
        "start": int(answer["start"]),
        "end": int(answer["end"]),
    }


def _generate(task: Task, question: str, hits: list[dict[str, Any]], *, max_new_tokens: int) -> dict[str, Any]:
    """A chat model's answer from the passages, and the passage ids it cites."""
    chat = getattr(task, "chat", None)
    if chat is None:
        raise InputError(
            f"{task.ref.name!r} cannot read passages: pass an extractive QA model or a causal chat model as reader."
        )
    passages = "\n\n".join(f"[{hit['id']}] {hit['text']}" for hit in hits)
    text = chat([CHAT_PROMPT.format(passages=passages, question=question)], max_new_tokens=max_new_tokens)[0]
    known = {str(hit["id"]) for hit in hits}
    cited = [c for c in dict.fromkeys(re.findall(r"\[([^\[\]]+)\]", text)) if c in known]
    return {"answer": text, "score": None, "citations": cited}
