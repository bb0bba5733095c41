"""Extractive question answering: answers past the first window, with character offsets, batched as one at a time."""

import pytest
from transformers import pipeline

import hfapps
from hfapps.errors import InputError

from tiny_models import sentences

# The tiny QA model's start/end logits peak on the token "zebra" and nowhere else.
FILLER = " ".join(s for s in sentences(60, seed=5) if "zebra" not in s)


def test_answer_beyond_the_first_window_with_character_offsets(tiny):
    context = FILLER + " Then the zebra looked quiet."
    assert len(context) > 1000  # about 300 tokens; the tiny model's window is 64
    result = hfapps.answer(question="which animal looked quiet?", context=context, model=tiny["qa"])
    assert result["answer"] == "zebra"
    assert context[result["start"] : result["end"]] == "zebra"
    assert result["start"] == context.index("zebra")
    assert result["score"] > 0.9


def test_answer_in_first_window_and_lists(tiny):
    contexts = ["a zebra was slow today.", FILLER + " the zebra."]
    results = hfapps.answer(question=["who?", "who?"], context=contexts, model=tiny["qa"])
    assert [r["answer"] for r in results] == ["zebra", "zebra"]
    assert [r["start"] for r in results] == [c.index("zebra") for c in contexts]
    same_context = hfapps.answer(question=["who?", "which?"], context=contexts[0], model=tiny["qa"])
    assert [r["start"] for r in same_context] == [2, 2]


def test_top_k_returns_distinct_spans_best_first(tiny):
    results = hfapps.answer(question="who?", context="a zebra was slow today.", model=tiny["qa"], top_k=3)
    assert len(results) == 3 and results[0]["answer"] == "zebra"
    assert len({(r["start"], r["end"]) for r in results}) == 3
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_batched_equals_one_at_a_time(tiny):
    items = [{"question": "who?", "context": s + " the zebra."} for s in sentences(12, seed=9)]
    task = hfapps.load("question-answering", tiny["qa"], batch_size=4)
    assert task(items) == [task(item) for item in items]


def test_registered_pipeline_loads_through_transformers(tiny):
    import hfapps.pipelines  # noqa: F401

    qa = pipeline("hfapps-question-answering", model=tiny["qa"])
    result = qa({"question": "who?", "context": "a zebra was slow today."})
    assert result["answer"] == "zebra" and result["start"] == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"question": "who?", "context": None}, "context"),
        ({"question": "who?", "context": ""}, "no context"),
        ({"question": "", "context": "text"}, "empty"),
        ({"question": None, "context": "text"}, "question"),
        ({"question": ["a", "b"], "context": ["only one"]}, "as long as"),
    ],
)
def test_bad_questions_get_clear_errors(tiny, kwargs, message):
    with pytest.raises(InputError, match=message):
        hfapps.answer(model=tiny["qa"], **kwargs)


def test_answers_are_widened_to_whole_words(tiny):
    # "zebras" is split by the tiny vocabulary into "zebra" + "##s"; the model points at "zebra".
    context = "Three zebras stood by the river."
    task = hfapps.load("question-answering", tiny["qa"])
    assert task.tokenizer.tokenize("zebras")[0] == "zebra" and len(task.tokenizer.tokenize("zebras")) > 1
    whole = task(question="which animal?", context=context)
    assert whole["answer"] == "zebras" and context[whole["start"] : whole["end"]] == "zebras"
    part = task(question="which animal?", context=context, align_to_words=False)
    assert part["answer"] == "zebra"
