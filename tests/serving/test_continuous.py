"""Continuous batching in `hfapps serve`, spoken to by the official `openai` client against real server processes:
a request that arrives while another streams is answered before that one ends (it joined the running batch), greedy
text equal to the dynamic batcher's (`--continuous-batching false`), a client that leaves frees its slot, what the
running batch cannot take goes through the batcher, and SIGTERM lets the running streams finish."""

import json
import signal
import threading
import time
import urllib.request

import pytest
from lm_models import make_tiny_lm
from serving.test_openai import HELLO, LMServer

from conftest import need_module
from servers import request

LONG = 800  # new tokens of the stream that others join


@pytest.fixture(scope="module")
def long_lm(tmp_path_factory):
    return make_tiny_lm(str(tmp_path_factory.mktemp("cb") / "tiny-lm-1024"), window=1024)


@pytest.fixture(scope="module")
def server(long_lm):
    running = LMServer(long_lm, "--max-new-tokens", str(LONG))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def batcher_server(long_lm):
    running = LMServer(long_lm, "--max-new-tokens", str(LONG), "--continuous-batching", "false")
    yield running
    running.stop()


def client_for(server):
    openai = need_module("openai")
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def continuous(server) -> dict:
    """The chat model's continuous-batching counters, from `GET /v1/models`."""
    status, listed = request(server.url, "GET", "/v1/models")
    assert status == 200
    return next(m for m in listed["data"] if m["task"] == "chat")["continuous_batching"]


def text_of(stream) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_a_request_arriving_mid_stream_is_answered_before_that_stream_ends(server):
    client = client_for(server)
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    short_text: list[str] = []

    def note(what: str, index: int = 0) -> None:
        with lock:
            events.append((what, index))

    def short_request() -> None:
        stream = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "a quiet river"}], max_tokens=5, stream=True
        )
        pieces = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not pieces:
                    note("short: first token")
                pieces.append(chunk.choices[0].delta.content)
        note("short: done")
        short_text.append("".join(pieces))

    joiner = threading.Thread(target=short_request)
    long_stream = client.chat.completions.create(
        model="chat",
        messages=HELLO,
        max_tokens=LONG,
        stream=True,
        stream_options={"include_usage": True},
    )
    tokens, pieces = 0, []
    for chunk in long_stream:
        if chunk.choices and chunk.choices[0].delta.content:
            tokens += 1
            pieces.append(chunk.choices[0].delta.content)
            note("long: token", tokens)
            if tokens == 5:
                joiner.start()  # the long stream is decoding: this request must join it
        if chunk.usage:
            assert chunk.usage.completion_tokens == LONG
    note("long: done")
    joiner.join(timeout=120)
    order = [what for what, _ in events]
    assert order.index("short: first token") < order.index("long: done"), events[-10:]
    assert order.index("short: done") < order.index("long: done")
    # ...while the long stream still had tokens to come: it went on streaming after the short one had finished
    after = order.index("short: done")
    assert any(what == "long: token" for what in order[after:])
    # joining changed neither answer (greedy)
    alone = client.chat.completions.create(model="chat", messages=HELLO, max_tokens=LONG)
    assert "".join(pieces) == alone.choices[0].message.content
    short_alone = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "a quiet river"}], max_tokens=5
    )
    assert short_text == [short_alone.choices[0].message.content]
    assert continuous(server)["served"] >= 4


def test_greedy_text_equals_the_dynamic_batchers(server, batcher_server):
    on, off = client_for(server), client_for(batcher_server)
    assert continuous(batcher_server) is None  # --continuous-batching false: the batcher path only
    reference = off.chat.completions.create(model="chat", messages=HELLO, max_tokens=40).choices[0].message.content
    before = continuous(server)["served"]
    assert on.chat.completions.create(model="chat", messages=HELLO, max_tokens=40).choices[0].message.content == (
        reference
    )
    assert text_of(on.chat.completions.create(model="chat", messages=HELLO, max_tokens=40, stream=True)) == reference
    stop = reference[12:15]  # a stop string: the same cut on both paths, never shown
    cut = [
        text_of(c.chat.completions.create(model="chat", messages=HELLO, max_tokens=40, stop=[stop], stream=True))
        for c in (on, off)
    ]
    assert cut[0] == cut[1] == reference[: reference.index(stop)]
    prompts = ["the film was", "Hello there. How"]
    whole = [c.completions.create(model="generate", prompt=prompts, max_tokens=12) for c in (on, off)]
    assert [c.text for c in whole[0].choices] == [c.text for c in whole[1].choices]
    assert whole[0].usage.completion_tokens == whole[1].usage.completion_tokens == 24
    assert continuous(server)["served"] == before + 3  # chat (whole and streamed, the stop) went continuously
    # ...and so did the two completions, on the text-generation model
    status, listed = request(server.url, "GET", "/v1/models")
    generation = next(m for m in listed["data"] if m["task"] == "text-generation")["continuous_batching"]
    assert generation["served"] >= 2


def test_what_the_running_batch_cannot_take_goes_through_the_batcher(server):
    """Sampling with a seed and a JSON schema: the batcher path, with the same results as before."""
    client = client_for(server)
    before = continuous(server)["served"]
    ask = dict(model="chat", messages=HELLO, max_tokens=12, temperature=1.5, top_p=0.95, seed=7)
    first = client.chat.completions.create(**ask).choices[0].message.content
    assert client.chat.completions.create(**ask).choices[0].message.content == first
    schema = {
        "type": "object",
        "properties": {"label": {"enum": ["positive", "negative"]}},
        "required": ["label"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "sentiment", "schema": schema}}
    answer = client.chat.completions.create(model="chat", messages=HELLO, max_tokens=30, response_format=fmt)
    assert json.loads(answer.choices[0].message.content)["label"] in ("positive", "negative")
    assert continuous(server)["served"] == before


def test_a_client_that_leaves_frees_its_slot_at_once(server):
    client = client_for(server)
    freed = continuous(server)["freed"]
    stream = client.chat.completions.create(model="chat", messages=HELLO, max_tokens=LONG, stream=True)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    deadline = time.time() + 60
    while time.time() < deadline and continuous(server)["freed"] == freed:
        time.sleep(0.05)
    state = continuous(server)
    assert state["freed"] == freed + 1 and state["running"] == 0
    left = [line for line in server.lines if "left mid-stream" in line]
    assert left and int(left[-1].split("after ")[1].split()[0]) < LONG
    # the server goes on serving, in the running batch
    served = state["served"]
    assert client.chat.completions.create(model="chat", messages=HELLO, max_tokens=3).usage.completion_tokens == 3
    assert continuous(server)["served"] == served + 1


def test_sigterm_lets_the_running_streams_finish(long_lm):
    """Two streams in the running batch (the second joined the first) when SIGTERM comes: both end whole."""
    running = LMServer(long_lm, "--max-new-tokens", str(LONG))
    body = {"messages": HELLO, "max_tokens": 400, "stream": True, "stream_options": {"include_usage": True}}
    results: list[list[bytes]] = []

    def one(delay_lines: int) -> None:
        req = urllib.request.Request(
            running.url + "/v1/chat/completions", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=120) as response:
            events = [response.readline() for _ in range(delay_lines)]
            if delay_lines:
                started.set()
            events += response.read().split(b"\n")
        results.append([e[6:] for e in events if e.startswith(b"data: ")])

    started = threading.Event()
    try:
        first = threading.Thread(target=one, args=(6,))
        first.start()
        assert started.wait(60)
        second = threading.Thread(target=one, args=(0,))
        second.start()
        while continuous(running)["running"] < 2:
            time.sleep(0.01)
        running.process.send_signal(signal.SIGTERM)
        first.join(120)
        second.join(120)
        assert len(results) == 2
        for data in results:
            assert data[-1] == b"[DONE]" and json.loads(data[-2])["usage"]["completion_tokens"] == 400
        assert running.process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        output = running.stop()
    assert "left mid-stream" not in output


@pytest.mark.slow
def test_smollm2_answers_two_overlapping_streams_as_it_answers_each_alone():
    """The packaged SmolLM2: a second question joins the first one's running batch; both answers are the ones the
    dynamic batcher gives (hfapps' own /v1/chat route)."""
    running = LMServer("HuggingFaceTB/SmolLM2-135M-Instruct", "--max-new-tokens", "24")
    try:
        client = client_for(running)
        questions = ["What is the capital of France?", "Name three colours."]
        answers: dict[int, str] = {}

        def ask(index: int) -> None:
            messages = [{"role": "user", "content": questions[index]}]
            stream = client.chat.completions.create(model="chat", messages=messages, max_tokens=24, stream=True)
            answers[index] = text_of(stream)

        stream = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": questions[0]}], max_tokens=24, stream=True
        )
        pieces, joiner = [], threading.Thread(target=ask, args=(1,))
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
                if len(pieces) == 2:
                    joiner.start()
        joiner.join(60)
        answers[0] = "".join(pieces)
        assert "Paris" in answers[0]
        for index, question in enumerate(questions):  # one at a time: hfapps' own route, the dynamic batcher
            status, alone = request(
                running.url, "POST", "/v1/chat", {"inputs": question, "options": {"max_new_tokens": 24}}
            )
            assert status == 200 and alone["content"] == answers[index]
        assert continuous(running)["served"] == 2
    finally:
        running.stop()
