"""Properties over many generated inputs: every helper's results are well formed, and a bad item is named."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hfapps
from hfapps.errors import InputError

SPECIAL = [
    "مرحبا بالعالم، كيف حالك؟",  # Arabic (RTL)
    "שלום עולם \u202e reversed \u202c",  # Hebrew with a right-to-left override
    "😀🎉👍🏽 " * 40,  # emoji, skin-tone modifiers
    "\x00\x01\x07\x1b[31m bell and escape",  # control characters
    " \t\n\r\u3000",  # whitespace only (documented: InputError)
    "Zalgo t̸̢̛e̵͇͝x̷̰̕t̶̡̎",  # combining marks
    "a" * 100_000,  # one 100k-character word
    "the film was great. " * 5_000,  # 100k characters of ordinary text
    "🙂 " * 30_000,
]


TEXT = st.one_of(st.text(max_size=300), st.sampled_from(SPECIAL))


TEXTS = st.lists(TEXT, min_size=1, max_size=4)


SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def tasks(tiny):
    return {
        "sentiment": hfapps.load("sentiment", tiny["classifier"]),
        "zero-shot": hfapps.load("zero-shot", tiny["nli"]),
        "summarization": hfapps.load("summarization", tiny["t5"]),
        "translation": hfapps.load("translation", tiny["t5"], source="en", target="de"),
        "chat": hfapps.load("summarization", tiny["chat"]),
        "qa": hfapps.load("question-answering", tiny["qa"]),
    }


def call(task, inputs, **options):
    """The helper's result, or None when it raised hfapps' documented InputError."""
    try:
        return task(inputs, **options)
    except InputError:
        blank = [inputs] if isinstance(inputs, (str, dict)) else inputs
        values = [v for item in blank for v in (item.values() if isinstance(item, dict) else [item])]
        assert any(not v.strip() for v in values), "InputError is only for empty or whitespace-only text"
        return None


@SETTINGS
@given(texts=TEXTS)
def test_sentiment_is_well_formed(tasks, texts):
    results = call(tasks["sentiment"], texts)
    if results is not None:
        assert len(results) == len(texts)
        for r in results:
            assert r["label"] in ("NEGATIVE", "POSITIVE") and 0.0 <= r["score"] <= 1.0


@SETTINGS
@given(
    text=TEXT, labels=st.lists(st.text(min_size=1, max_size=20).filter(str.strip), min_size=1, max_size=3, unique=True)
)
def test_zero_shot_is_well_formed(tasks, text, labels):
    result = call(tasks["zero-shot"], text, labels=labels)
    if result is not None:
        assert sorted(result["labels"]) == sorted(labels) and len(result["scores"]) == len(labels)


@SETTINGS
@given(texts=TEXTS)
def test_summaries_and_translations_are_well_formed(tasks, texts):
    for name, key in (("summarization", "summary_text"), ("translation", "translation_text"), ("chat", "summary_text")):
        results = call(tasks[name], texts, max_new_tokens=3)
        if results is not None:
            assert len(results) == len(texts) and all(isinstance(r[key], str) for r in results)


@SETTINGS
@given(question=TEXT, context=TEXT)
def test_answers_are_spans_of_their_context(tasks, question, context):
    result = call(tasks["qa"], {"question": question, "context": context})
    if result is not None:
        assert context[result["start"] : result["end"]] == result["answer"]
        assert 0.0 <= result["score"] <= 1.0


def test_mixed_list_names_the_bad_item(tasks):
    with pytest.raises(InputError, match="index 2"):
        tasks["sentiment"](["fine", "😀", 3.5, "fine"])
