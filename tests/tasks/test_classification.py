"""Classification and sentiment: shapes, order, top_k, truncation, zero-shot, and clear errors."""

import logging

import pytest

import hfapps
from hfapps.errors import InputError

from tiny_models import sentences

TEXTS = sentences(40, seed=3) + ["great", "the film was " + "very " * 80 + "good."]


def test_sentiment_single_list_and_stream_shapes(tiny):
    one = hfapps.sentiment("the film was great", model=tiny["classifier"])
    assert set(one) == {"label", "score"} and one["label"] in ("NEGATIVE", "POSITIVE") and 0 <= one["score"] <= 1
    many = hfapps.sentiment(["the film was great", "awful"], model=tiny["classifier"])
    assert isinstance(many, list) and len(many) == 2
    stream = hfapps.sentiment((t for t in ["the film was great", "awful"]), model=tiny["classifier"])
    assert not isinstance(stream, list)
    assert list(stream) == many
    assert hfapps.sentiment([], model=tiny["classifier"]) == []


def test_sorted_batches_equal_one_at_a_time_in_input_order(tiny):
    task = hfapps.load("sentiment", tiny["classifier"], batch_size=8)
    batched = task(TEXTS)
    singles = [task(text) for text in TEXTS]
    assert [b["label"] for b in batched] == [s["label"] for s in singles]
    assert all(abs(b["score"] - s["score"]) < 1e-5 for b, s in zip(batched, singles))
    # A batch size that forces many batches and a token budget give the same results too.
    tight = hfapps.load("sentiment", tiny["classifier"], batch_size=3, max_batch_tokens=40)(TEXTS)
    assert all(abs(b["score"] - t["score"]) < 1e-5 and b["label"] == t["label"] for b, t in zip(batched, tight))


def test_top_k_gives_ranked_labels(tiny):
    result = hfapps.classify("the film was great", model=tiny["classifier"], top_k=None)
    assert [r["label"] for r in result] == sorted(
        (r["label"] for r in result), key=lambda name: -next(x["score"] for x in result if x["label"] == name)
    )
    assert {r["label"] for r in result} == {"NEGATIVE", "POSITIVE"}
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-5)
    assert len(hfapps.classify(["a b", "c"], model=tiny["classifier"], top_k=1)) == 2
    with pytest.raises(InputError, match="top_k"):
        hfapps.classify("a", model=tiny["classifier"], top_k=0)


def test_long_text_is_truncated_with_a_warning(tiny, caplog):
    long_text = "the film was great. " * 200  # ~1000 tokens, model limit 64
    with caplog.at_level(logging.WARNING, logger="hfapps"):
        result = hfapps.sentiment(long_text, model=tiny["classifier"])
    assert result["label"] in ("NEGATIVE", "POSITIVE")
    assert "truncated" in caplog.text and "64 tokens" in caplog.text


def test_zero_shot_scores_every_label(tiny):
    result = hfapps.classify(
        ["the film was great", "the match was slow"], labels=["sport", "cinema", "food"], model=tiny["nli"]
    )
    assert [r["sequence"] for r in result] == ["the film was great", "the match was slow"]
    for r in result:
        assert sorted(r["labels"]) == ["cinema", "food", "sport"]
        assert r["scores"] == sorted(r["scores"], reverse=True)
        assert sum(r["scores"]) == pytest.approx(1.0, abs=1e-4)
    top = hfapps.classify("the film was great", labels=["sport", "cinema", "food"], model=tiny["nli"], top_k=1)
    assert len(top["labels"]) == 1 and top["labels"][0] == result[0]["labels"][0]
    with pytest.raises(InputError, match="labels"):
        hfapps.classify("the film was great", labels=[], model=tiny["nli"])


@pytest.mark.parametrize(
    "bad, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        (None, "None"),
        (["ok", 3], "index 1 is a int"),
        (["ok", None], "index 1"),
        ([""], "index 0"),
        (42, "int"),
    ],
)
def test_bad_inputs_get_clear_errors(tiny, bad, message):
    with pytest.raises(InputError, match=message):
        hfapps.sentiment(bad, model=tiny["classifier"])


def test_unknown_option_is_refused(tiny):
    with pytest.raises(InputError, match="Unknown option"):
        hfapps.sentiment("a", model=tiny["classifier"], temperature=3)


def test_a_datasets_column_streams_in_order(tiny):
    from datasets import Dataset

    texts = sentences(30, seed=4)
    column = Dataset.from_dict({"text": texts})["text"]
    task = hfapps.load("sentiment", tiny["classifier"], batch_size=4, progress=False)
    streamed = task(column)
    assert not isinstance(streamed, list)
    assert [r["label"] for r in streamed] == [r["label"] for r in task(texts)]
