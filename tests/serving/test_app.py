"""`hfapps serve`, tested as a real server process on a free loopback port, through HTTP only."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hfapps
from hfapps.cli.sharding import free_port

from servers import Server, request


def same_labels(got: list[dict], expected: list[dict]) -> bool:
    """Labels identical, scores equal up to float rounding (requests batched together pad differently)."""
    return len(got) == len(expected) and all(
        g["label"] == e["label"] and g["score"] == pytest.approx(e["score"], abs=1e-5) for g, e in zip(got, expected)
    )


TEXTS = ["the film was great", "this phone is terrible today", "a zebra", "our hotel seemed quiet in Paris"]


def test_results_equal_the_helpers(server, tiny):
    status, body = request(server.url, "POST", "/v1/sentiment", {"inputs": TEXTS})
    assert status == 200 and body == hfapps.sentiment(TEXTS, model=tiny["classifier"])
    status, body = request(server.url, "POST", "/v1/sentiment", {"inputs": TEXTS[0], "options": {"top_k": None}})
    assert body == hfapps.sentiment(TEXTS[0], model=tiny["classifier"], top_k=None)
    pair = {"question": "what is it?", "context": "It was a zebra in Paris."}
    status, body = request(server.url, "POST", "/v1/answer", {"inputs": pair})
    assert body == hfapps.answer(inputs=[pair], model=tiny["qa"])[0] and body["answer"] == "zebra"
    status, body = request(server.url, "POST", "/v1/summarize", {"inputs": TEXTS, "options": {"max_new_tokens": 4}})
    assert body == hfapps.summarize(TEXTS, model=tiny["t5"], max_new_tokens=4)
    labels = ["sport", "politics"]
    status, body = request(server.url, "POST", "/v1/classify", {"inputs": TEXTS, "options": {"labels": labels}})
    assert body == hfapps.classify(TEXTS, model=tiny["nli"], labels=labels)
    # aliases and task names reach the same model; a body sent as form data (curl -d) is read as JSON
    assert (
        request(server.url, "POST", "/v1/sentiment-analysis", {"inputs": TEXTS})[1]
        == request(server.url, "POST", "/v1/sentiment", {"inputs": TEXTS})[1]
    )
    assert (
        request(
            server.url,
            "POST",
            "/v1/sentiment",
            json.dumps({"inputs": TEXTS}),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )[0]
        == 200
    )


def test_models_health_ready_docs_page(server, tiny):
    status, listed = request(server.url, "GET", "/v1/models")
    assert status == 200 and listed["object"] == "list"
    models = listed["data"]
    assert {m["task"]: m["path"] for m in models} == {
        "sentiment": "/v1/sentiment",
        "question-answering": "/v1/answer",
        "summarization": "/v1/summarize",
        "classification": "/v1/classify",
    }
    assert all(
        m["ready"] and m["device"] == "cpu" and m["dtype"] == "float32" and m["runtime"] == "pytorch" for m in models
    )
    assert request(server.url, "GET", "/health") == (200, {"status": "ok"})
    assert request(server.url, "GET", "/ready") == (200, {"ready": True})
    status, schema = request(server.url, "GET", "/openapi.json")
    assert "/v1/sentiment" in schema["paths"] and "max_new_tokens" in json.dumps(schema)
    assert request(server.url, "GET", "/docs")[0] == 200
    status, page = request(server.url, "GET", "/")
    assert status == 200 and "<form" in page and "http://" not in page and "https://" not in page  # no CDN


@pytest.mark.parametrize(
    "body, status, words",
    [
        ('{"inputs": ', 400, "not valid JSON"),
        ({"inputs": [""]}, 422, "index 0 is empty"),
        ({"inputs": 5}, 422, "inputs"),
        ([1, 2], 422, "body"),
        ({"inputs": "x", "options": {"bogus": 1}}, 422, "bogus"),
        ({"inputs": "x", "options": {"top_k": 0}}, 422, "at least 1"),
        ({"inputs": "x", "options": {"top_k": "2"}}, 422, "top_k"),
        ({"inputs": ["x"] * 51}, 422, "--max-texts"),
        ({"inputs": "x" * 2001}, 422, "--max-chars"),
    ],
)
def test_bad_requests_get_json_errors(server, body, status, words):
    got, answer = request(server.url, "POST", "/v1/sentiment", body)
    assert got == status and words in answer["error"]["message"], answer


def test_other_errors(server):
    status, body = request(server.url, "POST", "/v1/nope", {"inputs": "x"})
    assert status == 404 and "/v1/sentiment" in body["error"]["message"]
    status, body = request(server.url, "POST", "/v1/summarize", {"inputs": "x", "options": {"max_new_tokens": 10**8}})
    assert status == 422 and "--max-new-tokens" in body["error"]["message"]
    status, body = request(server.url, "POST", "/v1/summarize", {"inputs": "x", "options": {"num_beams": 0}})
    assert status == 422
    status, body = request(server.url, "POST", "/v1/sentiment", b'{"inputs": "' + b"a" * 1_100_000 + b'"}')
    assert status == 413 and "--max-body-bytes" in body["error"]["message"]
    status, body = request(server.url, "POST", "/v1/answer", {"inputs": {"question": "who?", "context": " "}})
    assert status == 422 and "no context" in body["error"]["message"]


def test_one_bad_request_does_not_fail_the_others_in_its_batch(server, tiny):
    """Requests gathered into one batch: the bad one gets its 422, the others their results."""
    bodies = [{"inputs": [t]} for t in TEXTS] + [{"inputs": ["   "]}]
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: request(server.url, "POST", "/v1/sentiment", b), bodies))
    expected = hfapps.sentiment(TEXTS, model=tiny["classifier"])
    assert same_labels([a[1][0] for a in answers[:-1]], expected)
    assert answers[-1][0] == 422


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        JSON,
        st.fixed_dictionaries({"inputs": JSON}),
        st.fixed_dictionaries({"inputs": st.lists(st.text(max_size=300), max_size=5)}),
        st.fixed_dictionaries({"inputs": st.text(max_size=300), "options": JSON}),
    ),
    path=st.sampled_from(["/v1/sentiment", "/v1/answer", "/v1/summarize", "/v1/classify"]),
)
def test_no_body_gives_a_500_or_a_hang(server, body, path):
    status, answer = request(server.url, "POST", path, body, timeout=30)
    assert status in (200, 400, 413, 422), (status, answer)
    if status != 200:
        assert answer["error"]["message"]
    assert request(server.url, "GET", "/health", timeout=5)[0] == 200


@pytest.mark.slow
def test_api_key_is_required_off_loopback_and_checked_on_every_request(tiny):
    done = subprocess.run(
        [sys.executable, "-m", "hfapps", "serve", "--host", "0.0.0.0", "--model", f"sentiment={tiny['classifier']}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "HFAPPS_API_KEY"},
    )
    assert done.returncode == 2 and "--api-key" in done.stderr
    keyed = Server({"sentiment": tiny["classifier"]}, env={"HFAPPS_API_KEY": "s3cret"})
    try:
        assert request(keyed.url, "POST", "/v1/sentiment", {"inputs": "x"})[0] == 401
        assert request(keyed.url, "GET", "/v1/models", headers={"X-API-Key": "wrong"})[0] == 401
        assert request(keyed.url, "GET", "/v1/models", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert request(keyed.url, "GET", "/health")[0] == 200  # liveness stays open for load balancers
        assert hfapps.Client(keyed.url, api_key="s3cret").sentiment("x")["label"] in ("NEGATIVE", "POSITIVE")
    finally:
        keyed.stop()


@pytest.mark.slow
def test_sigterm_finishes_the_requests_in_flight(tiny):
    """Requests waiting in a batch when SIGTERM arrives are answered before the server exits."""
    running = Server({"sentiment": tiny["classifier"]}, "--max-wait-ms", "1500")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(request, running.url, "POST", "/v1/sentiment", {"inputs": [t]}) for t in TEXTS * 2]
        time.sleep(0.5)  # the requests sit in the batcher's 1.5 s window
        running.process.send_signal(signal.SIGTERM)
        answers = [f.result(timeout=60) for f in futures]
    assert [a[0] for a in answers] == [200] * 8
    # uvicorn exits by re-raising the signal once it has shut down cleanly
    assert running.process.wait(timeout=60) in (0, -signal.SIGTERM)
    assert "Finished server process" in running.process.stdout.read()
    with pytest.raises(OSError):
        request(running.url, "GET", "/health", timeout=2)


@pytest.mark.slow
def test_500_concurrent_requests_are_all_answered(tiny):
    running = Server({"sentiment": tiny["classifier"]})
    texts = [f"{t} number {i}" for i, t in enumerate(TEXTS * 125)]
    try:
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(lambda t: request(running.url, "POST", "/v1/sentiment", {"inputs": t}), texts))
    finally:
        running.stop()
    assert [a[0] for a in answers] == [200] * 500
    assert same_labels([a[1] for a in answers], hfapps.sentiment(texts, model=tiny["classifier"]))


@pytest.mark.slow
def test_out_of_memory_is_a_503_and_the_server_stays_up(tmp_path):
    """A real out-of-memory: once the server is warm, its address space is capped (prlimit) a little above
    what it holds; one long input then cannot fit, and gets a 503 while the server keeps answering."""
    import resource

    from tiny_models import make_classifier

    model = make_classifier(str(tmp_path / "wide"), max_positions=2048, hidden=1024)
    running = Server({"sentiment": model}, "--max-chars", "100000", env={"OMP_NUM_THREADS": "1"})
    try:
        assert request(running.url, "POST", "/v1/sentiment", {"inputs": "the film was great"})[0] == 200
        with open(f"/proc/{running.process.pid}/status") as status:
            size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
        resource.prlimit(running.process.pid, resource.RLIMIT_AS, (size + (2 << 20), resource.RLIM_INFINITY))
        long_text = " ".join(["the film was great"] * 1000)
        status_code, body = request(running.url, "POST", "/v1/sentiment", {"inputs": long_text})
        assert status_code == 503 and "does not fit in memory" in body["error"]["message"], body
        assert request(running.url, "GET", "/health")[0] == 200
        assert request(running.url, "POST", "/v1/sentiment", {"inputs": "the film was great"})[0] == 200
    finally:
        running.stop()


@pytest.mark.slow
def test_several_worker_processes_serve_the_same_answers(tiny):
    running = Server({"sentiment": tiny["classifier"]}, "--workers", "2")
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(
                pool.map(lambda t: request(running.url, "POST", "/v1/sentiment", {"inputs": [t]}), TEXTS * 8)
            )
        import psutil

        workers = psutil.Process(running.process.pid).children(recursive=True)
        assert sum("multiprocessing" in " ".join(p.cmdline()) for p in workers) >= 2, [p.cmdline() for p in workers]
    finally:
        output = running.stop()
    assert same_labels([a[1][0] for a in answers], hfapps.sentiment(TEXTS * 8, model=tiny["classifier"]))
    assert output.count("Application startup complete") == 2, output[-2000:]


def test_a_model_that_cannot_be_found_stops_the_server_before_it_starts(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hfapps",
            "serve",
            "--model",
            f"sentiment={tmp_path / 'nope'}",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "does not exist" in done.stderr, done.stderr[-2000:]
    done = subprocess.run(
        [sys.executable, "-m", "hfapps", "serve", "--model", "sentiment"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "TASK=MODEL" in done.stderr
