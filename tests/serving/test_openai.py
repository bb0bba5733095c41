"""The OpenAI-compatible routes, spoken to by the official `openai` client against a real `hfapps serve` process
: chat and completions, streamed and not, usage,
stop, seed, JSON schemas, the models list, the server's limits, key and errors, and a client leaving mid-stream."""

import json
import os
import signal
import sys
import threading
import time
import urllib.request

import pytest
from lm_models import make_tiny_lm, tiny_lm  # noqa: F401 (fixture)

from hfapps.cli.sharding import free_port

from conftest import need_module
from servers import request


class LMServer:
    """`hfapps serve` with a chat and a generate model, as its own process."""

    def __init__(self, model, *extra, env=None):
        import subprocess

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "hfapps", "serve", "--port", str(self.port), "--model", f"chat={model}"]
        args += ["--model", f"generate={model}", *extra]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # one torch thread: on a machine whose cores are busy, two spin-waiting threads decode several times slower
            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        )
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
        headers = {"X-API-Key": (env or {}).get("HFAPPS_API_KEY", "")}
        deadline = time.time() + 120
        while time.time() < deadline:
            assert self.process.poll() is None, "the server exited:\n" + "".join(self.lines)
            try:
                if request(self.url, "GET", "/ready", headers=headers)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("the server did not become ready in 120 s")

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)
        return "".join(self.lines)


@pytest.fixture(scope="module")
def server(tiny_lm):  # noqa: F811
    running = LMServer(tiny_lm, "--max-new-tokens", "64", "--max-wait-ms", "20")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server):
    openai = need_module("openai")
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


HELLO = [{"role": "user", "content": "hello there"}]


def test_chat_completion_and_its_stream_agree(client):
    whole = client.chat.completions.create(model="chat", messages=HELLO, max_tokens=10)
    assert whole.object == "chat.completion" and whole.choices[0].message.role == "assistant"
    assert whole.choices[0].finish_reason == "length" and whole.usage.completion_tokens == 10
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + 10 and whole.usage.prompt_tokens > 3
    chunks = list(
        client.chat.completions.create(
            model="chat", messages=HELLO, max_tokens=10, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 2  # it came in pieces
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10


def test_the_stream_is_server_sent_events_ending_with_done(server):
    body = json.dumps({"model": "chat", "messages": HELLO, "max_tokens": 4, "stream": True}).encode()
    req = urllib.request.Request(server.url + "/v1/chat/completions", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = [block for block in raw.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"


def test_stop_never_reaches_the_client(client):
    text = client.chat.completions.create(model="chat", messages=HELLO, max_tokens=16).choices[0].message.content
    stop = text[5:8]
    cut = client.chat.completions.create(model="chat", messages=HELLO, max_tokens=16, stop=stop)
    assert cut.choices[0].message.content == text[: text.index(stop)] and cut.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(model="chat", messages=HELLO, max_tokens=16, stop=[stop], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == text[: text.index(stop)]


def test_seeded_sampling_repeats(client):
    ask = dict(model="chat", messages=HELLO, max_tokens=12, temperature=1.5, top_p=0.95, seed=7)
    first = client.chat.completions.create(**ask).choices[0].message.content
    assert client.chat.completions.create(**ask).choices[0].message.content == first
    others = {client.chat.completions.create(**{**ask, "seed": s}).choices[0].message.content for s in range(3)}
    assert len(others | {first}) > 1


def test_response_format_json_schema(client):
    jsonschema = need_module("jsonschema")
    schema = {
        "type": "object",
        "properties": {"label": {"enum": ["positive", "negative"]}},
        "required": ["label"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "sentiment", "schema": schema}}
    answer = client.chat.completions.create(model="chat", messages=HELLO, max_tokens=30, response_format=fmt)
    jsonschema.validate(json.loads(answer.choices[0].message.content), schema)


def test_completions_streamed_and_not(client):
    whole = client.completions.create(model="generate", prompt=["the film", "a quiet river"], max_tokens=6)
    assert whole.object == "text_completion" and [c.index for c in whole.choices] == [0, 1]
    assert whole.usage.completion_tokens == 12
    streamed = client.completions.create(model="generate", prompt="the film", max_tokens=6, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == whole.choices[0].text


def test_models_list_shape_keeps_hfapps_fields(client, server, tiny_lm):  # noqa: F811
    listed = client.models.list()
    assert {m.id for m in listed.data} == {tiny_lm}
    status, raw = request(server.url, "GET", "/v1/models")
    assert status == 200 and raw["object"] == "list"
    assert {m["task"] for m in raw["data"]} == {"chat", "text-generation"}
    assert all(m["object"] == "model" and m["ready"] and m["runtime"] == "pytorch" for m in raw["data"])


def test_hfapps_own_route_serves_chat_too(client, server):
    status, body = request(
        server.url, "POST", "/v1/chat", {"inputs": ["hello there"], "options": {"max_new_tokens": 10}}
    )
    expected = client.chat.completions.create(model="chat", messages=HELLO, max_tokens=10).choices[0].message.content
    assert status == 200 and body[0]["content"] == expected and body[0]["usage"]["completion_tokens"] == 10


def test_bad_requests_get_the_servers_errors(client, server):
    openai = need_module("openai")
    with pytest.raises(openai.UnprocessableEntityError, match="unknown role 'robot'"):
        client.chat.completions.create(model="chat", messages=[{"role": "robot", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="ends with a message from assistant"):
        client.chat.completions.create(model="chat", messages=[*HELLO, {"role": "assistant", "content": "Hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="over this server's limit of 64"):
        client.chat.completions.create(model="chat", messages=HELLO, max_tokens=65)
    with pytest.raises(openai.UnprocessableEntityError, match="window of 256 tokens"):
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "the film was " * 150}])
    with pytest.raises(openai.UnprocessableEntityError, match="schema"):
        fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "objekt"}}}
        client.chat.completions.create(model="chat", messages=HELLO, response_format=fmt)
    status, body = request(server.url, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400 and body["error"]["type"] == "MalformedJSON"
    status, body = request(server.url, "POST", "/v1/completions", {"prompt": "x", "max_tokens": "many"})
    assert status == 422 and "max_tokens" in body["error"]["message"]


def test_a_client_that_leaves_mid_stream_stops_its_decoding(client, server):
    stream = client.chat.completions.create(model="chat", messages=HELLO, max_tokens=64, stream=True)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    deadline = time.time() + 30
    while time.time() < deadline and not any("left mid-stream" in line for line in server.lines):
        time.sleep(0.1)
    left = [line for line in server.lines if "left mid-stream" in line]
    assert left, "".join(server.lines[-20:])
    assert int(left[-1].split("after ")[1].split()[0]) < 64
    # the server goes on serving
    assert client.chat.completions.create(model="chat", messages=HELLO, max_tokens=3).usage.completion_tokens == 3


def test_the_api_key_guards_the_openai_routes(tiny_lm):  # noqa: F811
    openai = need_module("openai")
    keyed = LMServer(tiny_lm, env={"HFAPPS_API_KEY": "s3cret"})
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=keyed.url + "/v1", api_key="wrong", max_retries=0).chat.completions.create(
                model="chat", messages=HELLO, max_tokens=2
            )
        good = openai.OpenAI(base_url=keyed.url + "/v1", api_key="s3cret", max_retries=0)
        assert good.chat.completions.create(model="chat", messages=HELLO, max_tokens=2).usage.completion_tokens == 2
    finally:
        keyed.stop()


def test_sigterm_lets_a_stream_in_flight_finish(tmp_path):
    """A SIGTERM while a stream decodes: the stream still ends whole (every token, then [DONE]), then the server
    exits."""
    model = make_tiny_lm(str(tmp_path / "long"), window=1024)
    running = LMServer(model, "--max-new-tokens", "600")
    body = {"messages": HELLO, "max_tokens": 600, "stream": True, "stream_options": {"include_usage": True}}
    req = urllib.request.Request(running.url + "/v1/chat/completions", data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            events = [response.readline() for _ in range(6)]  # the stream has begun
            running.process.send_signal(signal.SIGTERM)
            events += response.read().split(b"\n")
        data = [e[6:] for e in events if e.startswith(b"data: ")]
        assert data[-1] == b"[DONE]"
        usage = json.loads(data[-2])["usage"]
        assert usage["completion_tokens"] == 600  # decoding was not cut short
        assert running.process.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it drained on
    finally:
        output = running.stop()
    assert "left mid-stream" not in output
