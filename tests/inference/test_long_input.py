"""Long inputs: sentence and paragraph splits, chunks that fit, map-reduce summaries and split translations."""

import logging
import re

import pytest

import hfapps
from hfapps.errors import InputError
from hfapps.inference.long_input import Chunker, split_paragraphs, split_sentences

from tiny_models import sentences


def document(paragraphs: int, per_paragraph: int, seed: int = 0) -> tuple[str, list[list[str]]]:
    """A text of `paragraphs` paragraphs of distinct sentences, and those sentences."""
    pool = iter(dict.fromkeys(s.capitalize() for s in sentences(2000, seed=seed)))
    parts = [[next(pool) for _ in range(per_paragraph)] for _ in range(paragraphs)]
    return "\n\n".join(" ".join(p) for p in parts), parts


def spy(task) -> list[tuple[str, str]]:
    """Record every (input, output) pair of the real model's batches."""
    seen: list[tuple[str, str]] = []
    real = task._predict

    def record(batch, options):
        outputs = real(batch, options)
        seen.extend(zip(batch, (out[task.output_key] for out in outputs), strict=True))
        return outputs

    task._predict = record
    return seen


def test_sentences_and_paragraphs_are_found():
    text = (
        'Mr. Smith met Dr. Jones at 3.5 p.m. in the U.S. embassy. "Was it late?" she asked. J. K. Rowling '
        "wrote it... and then left! 東京です。次です。"
    )
    assert split_sentences(text) == [
        "Mr. Smith met Dr. Jones at 3.5 p.m. in the U.S. embassy.",
        '"Was it late?" she asked.',
        "J. K. Rowling wrote it... and then left!",
        "東京です。",
        "次です。",
    ]
    paragraphs, breaks = split_paragraphs("  One. Two.\n\n  Three.\n \n\nFour.\nFive. \n")
    assert paragraphs == ["One. Two.", "Three.", "Four.", "Five."]
    assert breaks == ["\n\n  ", "\n \n\n", "\n"]


def test_chunks_fit_keep_order_and_overlap(tiny):
    tokenizer = hfapps.load("summarization", tiny["bart"]).tokenizer
    text, parts = document(4, 9)
    chunker = Chunker(tokenizer, budget=40, overlap=12)
    chunks = chunker.document_chunks(text)
    assert len(chunks) > 4
    assert max(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in chunks) <= 40
    # Every sentence is in a chunk, in order; a chunk starts where the previous one ended or a little before.
    flat = [s for p in parts for s in p]
    position = 0
    for chunk in chunks:
        units = split_sentences(chunk.replace("\n\n", " "))
        start = flat.index(units[0])
        assert start <= position and flat[start : start + len(units)] == units
        position = start + len(units)
    assert position == len(flat)
    assert any(flat.index(split_sentences(c)[0]) < position for c in chunks[1:])  # some overlap happened
    # A sentence longer than the budget is cut into pieces that fit.
    long_sentence = " ".join(flat[:12]).replace(".", ",")
    pieces = Chunker(tokenizer, budget=20).paragraph_chunks(long_sentence)[0][0]
    assert len(pieces) > 1
    assert all(len(tokenizer(p, add_special_tokens=False)["input_ids"]) <= 20 for p in pieces)


@pytest.mark.parametrize("kind", ["bart", "chat"])
def test_summarize_long_text_is_map_reduced(tiny, kind):
    task = hfapps.load("summarization", tiny[kind])
    seen = spy(task)
    long_text, parts = document(3, 12, seed=1)
    short_text = "The film was great."
    options = {"min_new_tokens": 3, "max_new_tokens": 4, "chunk_tokens": 48}
    summary_long, summary_short = task([long_text, short_text], **options)
    inputs = [text for text, _ in seen]
    outputs = dict(seen)
    assert summary_short == {"summary_text": outputs[short_text]}
    assert all(len(task.tokenizer(t, add_special_tokens=False)["input_ids"]) <= 48 for t in inputs)
    # Round one ran the short text whole beside the long text's chunks, which hold every one of its sentences.
    chunker = Chunker(task.tokenizer, budget=48, overlap=32)
    chunks = chunker.document_chunks(long_text)
    assert len(chunks) > 3 and set(chunks) | {short_text} <= set(inputs[: len(chunks) + 1])
    assert all(any(sentence in chunk for chunk in chunks) for p in parts for sentence in p)
    # Each later round summarizes the joined summaries of the one before, until they fit; the last is the result.
    text, rounds = long_text, 0
    while chunker.count([text])[0] > 48:
        text = "\n\n".join(outputs[chunk] for chunk in chunker.document_chunks(text))
        rounds += 1
    assert rounds >= 1 and summary_long == {"summary_text": outputs[text]}
    # Batched equals one text at a time.
    assert task([long_text, short_text], **options) == [task(long_text, **options), task(short_text, **options)]


def test_summarize_truncate_keeps_the_old_behaviour(tiny, caplog):
    task = hfapps.load("summarization", tiny["bart"])
    seen = spy(task)
    text, _ = document(3, 12, seed=2)
    with caplog.at_level(logging.WARNING, logger="hfapps"):
        task(text, max_new_tokens=4, long_input="truncate")
    assert [t for t, _ in seen] == [text] and "truncated" in caplog.text


@pytest.mark.parametrize("kind", ["t5", "chat"])
def test_translate_splits_sentences_and_keeps_paragraphs(tiny, kind):
    task = hfapps.load("translation", tiny[kind], source="en", target="de")
    seen = spy(task)
    text, parts = document(3, 6, seed=3)
    text = text.replace("\n\n", "\n \n", 1).replace("\n\n", "\n", 1)  # breaks are kept as written
    short = "The film was great."
    result, whole = task([text, short], max_new_tokens=3, chunk_tokens=40)
    outputs = dict(seen)
    assert whole == {"translation_text": outputs[short]}
    # Each paragraph's chunks were translated and joined back in order, with the text's own breaks.
    paragraphs, breaks = split_paragraphs(text)
    chunker = Chunker(task.tokenizer, budget=40)
    expected = [" ".join(outputs[chunk] for chunk in chunker.paragraph_chunks(p)[0][0]) for p in paragraphs]
    assert result["translation_text"] == expected[0] + breaks[0] + expected[1] + breaks[1] + expected[2]
    assert all(any(sentence in chunk for chunk in outputs) for p in parts for sentence in p)
    assert len(outputs) > len(paragraphs) + 1  # paragraphs went in several chunks
    assert not any(re.search(r"\n", chunk) for chunk in outputs)  # no chunk spans a paragraph break


def test_long_input_options_are_checked(tiny):
    task = hfapps.load("summarization", tiny["bart"])
    with pytest.raises(InputError, match="'map_reduce', 'truncate'"):
        task("A text.", long_input="split")
    with pytest.raises(InputError, match=r"chunk_tokens=5000 is over .* \(112 tokens\)"):
        task("A text.", chunk_tokens=5000)
    with pytest.raises(InputError, match="at least 16"):
        hfapps.translate("A text.", model=tiny["t5"], source="en", target="de", chunk_tokens=4)


def test_command_line_takes_the_long_input_flags(tiny, tmp_path, capsys):
    import json

    from hfapps.cli import main

    text, _ = document(3, 8, seed=4)
    source = tmp_path / "docs.jsonl"
    source.write_text(json.dumps({"text": text}) + "\n")
    options = {"min_new_tokens": 2, "max_new_tokens": 3, "chunk_tokens": 40}
    code = main(
        [
            "summarize",
            "--input",
            str(source),
            "--model",
            tiny["bart"],
            "--min-new-tokens",
            "2",
            "--max-new-tokens",
            "3",
            "--chunk-tokens",
            "40",
        ]
    )
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and out[0]["summary_text"] == hfapps.summarize(text, model=tiny["bart"], **options)["summary_text"]
    with pytest.raises(SystemExit):
        main(["summarize", "x", "--model", tiny["bart"], "--long-input", "split"])
    assert "invalid choice: 'split'" in capsys.readouterr().err
