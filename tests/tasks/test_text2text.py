"""Summarization and translation: prefixes, language pairs, chat models, whole generation batches and bad inputs."""

import logging

import pytest
from transformers import pipeline

import hfapps
from hfapps.errors import InputError, UnsupportedLanguageError

from tiny_models import sentences, write_meta

TEXTS = sentences(10, seed=11) + ["the film was " + "really " * 30 + "good."]


@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_summarize_batched_equals_one_at_a_time(tiny, kind):
    task = hfapps.load("summarization", tiny[kind], batch_size=4)
    batched = task(TEXTS, max_new_tokens=6)
    singles = [task(text, max_new_tokens=6) for text in TEXTS]
    assert batched == singles
    assert all(set(r) == {"summary_text"} and isinstance(r["summary_text"], str) for r in batched)


def test_t5_gets_its_task_prefix(tiny):
    task = hfapps.load("summarization", tiny["t5"])
    with_prefix = task("the film was great.", max_new_tokens=6)
    explicit = task.pipeline("summarize: the film was great.", input_prefix="", max_new_tokens=6)
    no_prefix = task.pipeline("the film was great.", input_prefix="", max_new_tokens=6)
    assert with_prefix == explicit
    assert with_prefix != no_prefix  # the prefix reached the model


def test_long_document_is_truncated_with_a_warning(tiny, caplog):
    with caplog.at_level(logging.WARNING, logger="hfapps"):
        result = hfapps.summarize(
            "the film was great. " * 100, model=tiny["bart"], max_new_tokens=4, long_input="truncate"
        )
    assert isinstance(result["summary_text"], str)
    assert "truncated" in caplog.text


def test_translate_with_t5_prefixes_and_pair_check(tiny):
    de = hfapps.translate(["the film was great."], source="en", target="de", model=tiny["t5"], max_new_tokens=6)
    fr = hfapps.translate(["the film was great."], source="en", target="fr", model=tiny["t5"], max_new_tokens=6)
    assert set(de[0]) == {"translation_text"} and set(fr[0]) == {"translation_text"}
    pipe = hfapps.load("translation", tiny["t5"]).pipeline
    for target, language in (("de", "German"), ("fr", "French")):
        preprocess, _, _ = pipe._sanitize_parameters(src_lang="en", tgt_lang=target)
        encoded = pipe.preprocess("the film was great.", **preprocess)
        decoded = pipe.tokenizer.decode(encoded["input_ids"][0], skip_special_tokens=True)
        assert decoded.strip().startswith(f"translate English to {language}:")
    with pytest.raises(UnsupportedLanguageError, match=r"en->es.*en->de, en->fr|does not translate en->es"):
        hfapps.translate("the film", source="en", target="es", model=tiny["t5"])


def test_translate_uses_a_trained_models_own_pair(tiny, tmp_path):
    import shutil

    folder = tmp_path / "bart-en-de"
    shutil.copytree(tiny["bart"], folder)
    write_meta(str(folder), task="translation", source_lang="en", target_lang="de", prefix="")
    task = hfapps.load("translation", str(folder))
    assert (task.source, task.target) == ("en", "de")
    assert set(task("the film was great.", max_new_tokens=4)) == {"translation_text"}
    with pytest.raises(UnsupportedLanguageError, match="does not translate fr->de"):
        hfapps.translate("x", source="fr", target="de", model=str(folder))


def test_translate_needs_languages_without_a_model():
    with pytest.raises(UnsupportedLanguageError, match="source= and target="):
        hfapps.translate("hello")


def test_chat_model_summarizes_and_translates(tiny):
    summary = hfapps.summarize(["the film was great.", "this phone is slow"], model=tiny["chat"], max_new_tokens=5)
    assert [set(s) for s in summary] == [{"summary_text"}] * 2
    translation = hfapps.translate(
        "the film was great.", source="en", target="de", model=tiny["chat"], max_new_tokens=5
    )
    assert isinstance(translation["translation_text"], str)
    task = hfapps.load("summarization", tiny["chat"])
    assert task.chat is not None and task.chat.tokenizer.padding_side == "left"
    assert task(TEXTS, max_new_tokens=4) == [task(t, max_new_tokens=4) for t in TEXTS]
    with pytest.raises(UnsupportedLanguageError, match="Unknown language code 'xx'"):
        hfapps.translate("hello", source="en", target="xx", model=tiny["chat"])


def _batch_sizes(task, monkeypatch) -> list[int]:
    """The sizes of the batches `task` hands its model, appended as it runs."""
    sizes: list[int] = []
    predict = task._predict
    monkeypatch.setattr(task, "_predict", lambda batch, options: sizes.append(len(batch)) or predict(batch, options))
    return sizes


@pytest.mark.parametrize("kind", ["t5", "chat"])
def test_a_generation_batch_of_mixed_lengths_is_one_call(tiny, kind, monkeypatch):
    # Classification splits such a batch to save padding; generation must not: each call repeats the
    # whole decoding loop. Ten texts of 4 to 13 words, batch_size 16: one call to the model.
    from hfapps.inference.batching import MIN_SPLIT_BATCH

    texts = ["the film was " + "really " * n + "good." for n in range(10, 0, -1)]
    assert len(texts) > MIN_SPLIT_BATCH
    task = hfapps.load("summarization", tiny[kind], batch_size=16)
    sizes = _batch_sizes(task, monkeypatch)
    batched = task(texts, max_new_tokens=4)
    assert sizes == [len(texts)]
    assert batched == [task(t, max_new_tokens=4) for t in texts]
    classifier = hfapps.load("classification", tiny["classifier"], batch_size=16)
    classifier_sizes = _batch_sizes(classifier, monkeypatch)
    classifier(texts)
    assert len(classifier_sizes) > 1  # the encoder task still splits where padding would waste compute


def test_chat_prompt_says_the_task_and_languages(tiny):
    task = hfapps.load("translation", tiny["chat"], source="en", target="fr")
    prompt = task._prompt("Good morning", source="en", target="fr")
    assert "English" in prompt and "French" in prompt and prompt.endswith("Good morning")


@pytest.mark.parametrize(
    "name, key", [("hfapps-summarization", "summary_text"), ("hfapps-translation", "translation_text")]
)
def test_registered_pipelines_load_through_transformers(tiny, name, key):
    import hfapps.pipelines  # noqa: F401

    pipe = pipeline(name, model=tiny["t5"])
    single = pipe("the film was great.", max_new_tokens=4)
    assert set(single) == {key}
    batch = pipe(["the film was great.", "this phone is slow"], batch_size=2, max_new_tokens=4)
    assert len(batch) == 2 and batch[0] == single


def test_bad_summarize_inputs(tiny):
    with pytest.raises(InputError, match="index 1"):
        hfapps.summarize(["fine", ""], model=tiny["t5"])


def test_summarize_with_a_bert_tokenizer_on_an_encoder_decoder(tmp_path):
    from transformers import pipeline

    import hfapps.pipelines  # noqa: F401

    from tiny_models import make_bart

    model = make_bart(str(tmp_path / "bart-bert"), bert_tokens=True)
    assert "token_type_ids" in hfapps.load("summarization", model).tokenizer("a text")
    assert "summary_text" in hfapps.summarize("the film was great today.", model=model, max_new_tokens=4)
    assert "translation_text" in hfapps.translate("the film was great.", model=model, max_new_tokens=4)
    assert "summary_text" in pipeline("hfapps-summarization", model=model)("the film was great.", max_new_tokens=4)
