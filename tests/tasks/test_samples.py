"""hfapps' sample data: balanced, varied, with answers at their offsets, mapped onto a recipe's columns."""

import collections
import csv
import json
import os

import pytest

from hfapps.data import SAMPLE_DIR
from hfapps.errors import DataError
from hfapps.tasks.arguments import DataArguments
from hfapps.training.splits import load_splits


def rows(name):
    with open(os.path.join(SAMPLE_DIR, name), encoding="utf-8", newline="") as handle:
        if name.endswith(".csv"):
            return list(csv.DictReader(handle))
        return [json.loads(line) for line in handle if line.strip()]


def test_sentiment_is_balanced_varied_and_unique():
    data = rows("sentiment.csv")
    labels = collections.Counter(r["label"] for r in data)
    assert len(data) >= 600 and set(labels) == {"NEGATIVE", "POSITIVE"}
    assert abs(labels["NEGATIVE"] - labels["POSITIVE"]) <= 5
    assert len({r["domain"] for r in data}) >= 6
    assert len({r["text"] for r in data}) == len(data)
    texts = " ".join(r["text"].lower() for r in data)
    assert "not bad" in texts and "oh great" in texts  # negation and sarcasm are in there


def test_topics_have_four_balanced_classes():
    data = rows("topics.csv")
    labels = collections.Counter(r["label"] for r in data)
    assert len(data) >= 400 and len(labels) == 4 and min(labels.values()) >= 100
    assert len({r["text"] for r in data}) == len(data)


def test_every_qa_answer_is_at_its_offset():
    with open(os.path.join(SAMPLE_DIR, "qa.json"), encoding="utf-8") as handle:
        squad = json.load(handle)
    paragraphs = [p for article in squad["data"] for p in article["paragraphs"]]
    questions = [(p["context"], qa) for p in paragraphs for qa in p["qas"]]
    assert len(paragraphs) >= 40 and len(questions) >= 150
    assert len({qa["id"] for _, qa in questions}) == len(questions)
    for context, qa in questions:
        assert qa["answers"], qa["id"]
        for answer in qa["answers"]:
            start = answer["answer_start"]
            assert context[start : start + len(answer["text"])] == answer["text"], qa["id"]


def test_summaries_and_translations():
    pairs = rows("summarization.jsonl")
    assert len(pairs) >= 60
    assert all(len(p["summary"]) < len(p["document"]) / 2 for p in pairs)
    translations = rows("translation_en_de.jsonl")
    assert len(translations) >= 300 and all(p["en"].strip() and p["de"].strip() for p in translations)
    assert len({p["en"] for p in translations}) == len(translations)


@pytest.mark.parametrize(
    "task, columns, extra",
    [
        ("sentiment", {"text_column": "sentence"}, {}),
        ("classification", {}, {}),
        ("question-answering", {}, {}),
        ("summarization", {"text_column": "document"}, {}),
        ("translation", {}, {"source_lang": "en", "target_lang": "de"}),
        ("mlm", {}, {}),
    ],
)
def test_dataset_name_sample_maps_to_the_recipes_columns(task, columns, extra):
    from hfapps.tasks import TRAINING

    args = DataArguments(task=task, dataset_name="sample", **columns, **extra)
    spec = TRAINING[task](args)
    splits = load_splits(args, sample=spec.load_sample)
    assert set(splits) == {"train", "validation"}
    assert set(spec.columns()) <= set(splits["train"].column_names)
    spec.check(spec.prepare(splits))


def test_sample_translation_is_english_german_only():
    from hfapps.tasks import TRAINING

    args = DataArguments(task="translation", dataset_name="sample", source_lang="en", target_lang="ro")
    with pytest.raises(DataError, match="English-German"):
        load_splits(args, sample=TRAINING["translation"](args).load_sample)
