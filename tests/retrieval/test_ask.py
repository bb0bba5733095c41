"""hfapps.ask: retrieve then read; the span's source id and character offsets point into that passage."""

from __future__ import annotations

import pytest

from hfapps.errors import InputError
from hfapps.retrieval.ask import ask
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
