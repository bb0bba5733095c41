"""Plain generation on a tiny Llama: results in input order with finish reasons and usage, stop strings, limits, and
`hfapps generate --input prompts.jsonl --output out.jsonl` through the batch runner (resume after an interruption)."""

import json

import pytest
from lm_models import tiny_lm  # noqa: F401 (fixture)

import hfapps
from hfapps.cli import main
from hfapps.errors import InputError, TaskMismatchError


@pytest.fixture(scope="module")
def generate(tiny_lm):  # noqa: F811
    return hfapps.load("text-generation", model=tiny_lm, progress=False)


PROMPTS = ["the film", "Hello there. How are you?", "a quiet river, a loud city", "my doctor said"]


def test_results_in_input_order_match_one_at_a_time(generate):
    alone = [generate(p, max_new_tokens=7) for p in PROMPTS]
    together = generate(PROMPTS, max_new_tokens=7, batch_size=3)
    assert together == alone
    assert all(r["finish_reason"] == "length" and r["usage"]["completion_tokens"] == 7 for r in alone)
    assert len({r["generated_text"] for r in alone}) == len(PROMPTS)
    lengths = [len(generate.tokenizer(p)["input_ids"]) for p in PROMPTS]
    assert [r["usage"]["prompt_tokens"] for r in alone] == lengths


def test_a_stream_of_prompts_gives_a_lazy_stream_of_results(generate):
    results = generate(iter(PROMPTS), max_new_tokens=4)
    assert not isinstance(results, list)
    assert list(results) == generate(PROMPTS, max_new_tokens=4)


def test_stop_strings_end_each_row_where_they_appear(generate):
    texts = [r["generated_text"] for r in generate(PROMPTS, max_new_tokens=12)]
    stop = texts[1][3:6]
    cut = generate(PROMPTS, max_new_tokens=12, stop=[stop])
    for text, result in zip(texts, cut):
        if stop in text:
            assert result["generated_text"] == text[: text.index(stop)] and result["finish_reason"] == "stop"
        else:
            assert result["generated_text"] == text and result["finish_reason"] == "length"


def test_end_token_ends_the_answer(generate):
    """A model that writes its end token stops there: finish_reason "stop", the token not in the text."""
    encoded = generate.tokenizer("the film", return_tensors="pt")
    ids = generate.model.generate(**encoded, max_new_tokens=12, do_sample=False)[0, encoded["input_ids"].shape[1] :]
    token = int(ids[4])
    first = ids.tolist().index(token)
    generate.end_ids.add(token)
    try:
        result = generate("the film", max_new_tokens=40)
    finally:
        generate.end_ids.discard(token)
    assert result["finish_reason"] == "stop" and result["usage"]["completion_tokens"] == first + 1
    assert result["generated_text"] == generate.tokenizer.decode(ids[:first])


def test_limits_and_bad_options(generate):
    with pytest.raises(InputError, match="max_new_tokens=256 is over"):
        generate("the film", max_new_tokens=256)
    with pytest.raises(InputError, match="temperature"):
        generate("the film", temperature=-1)
    with pytest.raises(InputError, match="prompt at index 1 is empty"):
        generate(["the film", " "])
    with pytest.raises(InputError, match=r"prompt is \d+ tokens: more than .* window of 256"):
        generate("the film " * 200)


def test_an_encoder_cannot_generate(tiny):
    with pytest.raises(TaskMismatchError, match="causal language model"):
        hfapps.load("text-generation", model=tiny["classifier"])


def test_cli_generate_writes_jsonl_and_resumes(tiny_lm, tmp_path, capsys):  # noqa: F811
    source = tmp_path / "prompts.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": p}) + "\n" for i, p in enumerate(PROMPTS)))
    target = tmp_path / "out.jsonl"
    argv = ["generate", "--input", str(source), "--output", str(target), "--model", tiny_lm, "--max-new-tokens", "5"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in rows] == [0, 1, 2, 3]
    assert [r["generated_text"] for r in rows] == [
        r["generated_text"] for r in hfapps.load("text-generation", model=tiny_lm)(PROMPTS, max_new_tokens=5)
    ]
    # an interrupted run: two lines written; --resume does the other two and keeps the first two as they were
    target.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    assert main([*argv, "--resume"]) == 0
    assert [json.loads(line) for line in target.read_text().splitlines()] == rows
    assert "Resuming: 2 of 4 rows" in capsys.readouterr().err
