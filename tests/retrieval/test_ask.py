"""hfapps.ask: retrieve then read; the span's source id and character offsets point into that passage."""

from __future__ import annotations

import pytest

from hfapps.errors import InputError
from hfapps.retrieval.ask import _extract, ask
from hfapps.retrieval.index import Index


def test_extractive_answer_points_into_its_source(tmp_path, retrieval_models, documents):
    # The tiny QA model answers "zebra" wherever the word stands: the answer must come from the zebra passage.
    with Index(tmp_path / "ix", model=retrieval_models["embedder"]) as index:
        index.add(documents)
        result = ask("Where does the zebra live?", index=index, reader=retrieval_models["qa"], k=3)
    assert result["answer"].lower().startswith("zebra")
    assert result["id"] == "zebra"
    source = next(s for s in result["sources"] if s["id"] == result["id"])
    assert source["text"][result["start"] : result["end"]] == result["answer"]
    assert len(result["sources"]) == 3 and result["question"] == "Where does the zebra live?"


def test_ask_opens_an_index_by_path_and_checks_input(tmp_path, retrieval_models, documents):
    with Index(tmp_path / "ix", model=retrieval_models["embedder"]) as index:
        index.add(documents)
    result = ask("zebra stripes", index=str(tmp_path / "ix"), reader=retrieval_models["qa"], k=2, mode="bm25")
    assert result["id"] == "zebra"
    with pytest.raises(InputError):
        ask("", index=str(tmp_path / "ix"), reader=retrieval_models["qa"])
    with pytest.raises(InputError, match="k must be"):
        ask("zebra", index=str(tmp_path / "ix"), reader=retrieval_models["qa"], k=0)


def test_chat_reader_cites_passages_by_id(tmp_path, retrieval_models, documents, tiny):
    with Index(tmp_path / "ix", model=retrieval_models["embedder"]) as index:
        index.add(documents)
        result = ask("zebra", index=index, reader=tiny["chat"], k=2, max_new_tokens=8)
    assert isinstance(result["answer"], str)
    assert set(result["citations"]) <= {s["id"] for s in result["sources"]}


class _SetScores:
    """An extractive reader whose span probabilities the test sets: `_extract`'s choice between passages."""

    name = "question-answering"

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores

    def __call__(self, inputs: list[dict[str, str]]) -> list[dict[str, object]]:
        return [
            {"answer": item["context"][:5], "score": score, "start": 0, "end": 5}
            for item, score in zip(inputs, self.scores, strict=True)
        ]


@pytest.mark.parametrize(
    ("scores", "chosen"),
    [
        ([0.5, 0.9, 0.1], "first"),  # surer, but not twice as sure as the first passage's span
        ([0.3, 0.9, 0.1], "second"),  # three times as sure: the second passage's span wins
        ([0.2, 0.3, 0.7], "third"),  # more than three times the first's: the third wins
    ],
)
def test_a_later_passage_wins_only_with_a_much_surer_span(scores, chosen):
    hits = [{"id": name, "text": f"{name} passage"} for name in ("first", "second", "third")]
    result = _extract(_SetScores(scores), "which?", hits)
    assert result["id"] == chosen
    assert result["score"] == scores[["first", "second", "third"].index(chosen)]  # the span's own probability
    assert result["answer"] == chosen[:5] and (result["start"], result["end"]) == (0, 5)
