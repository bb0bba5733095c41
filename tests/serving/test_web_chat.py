"""The web page as a new user meets it, in a real headless Chromium against one real `hfapps serve` process: a
model that failed to load, several lines pasted at once, and the chat view streaming a tiny chat model's tokens."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from lm_models import tiny_lm  # noqa: F401 (fixture)

from hfapps.cli.sharding import free_port

from conftest import need_module
from servers import Server, chromium_path, request

pytestmark = pytest.mark.slow


class SettledServer(Server):
    """`Server`, but waiting until no model is still loading rather than for a 200 from /ready: one of this
    server's models is meant to fail, and its /ready then stays 503."""

    def __init__(self, models: dict[str, str], *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "hfapps", "serve", "--port", str(self.port), *extra]
        for task, model in models.items():
            args += ["--model", f"{task}={model}"]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.process.stdout.read()}")
            try:
                status, body = request(self.url, "GET", "/ready")
                if status == 200 or (isinstance(body, dict) and body.get("loading") == []):
                    self.ready = body
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("the server's models did not finish loading in 120 s")


@pytest.fixture(scope="module")
def served(tiny, tiny_lm):  # noqa: F811 (the imported fixture)
    # `answer=` a sentiment classifier: a TaskMismatchError at load time, beside two good models.
    running = SettledServer({"sentiment": tiny["classifier"], "answer": tiny["classifier"], "chat": tiny_lm})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def page(served, tmp_path_factory):
    sync_api = need_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(20_000)
        page.goto(served.url + "/")
        page.wait_for_selector("#models li")
        yield page
        page.screenshot(path=str(tmp_path_factory.mktemp("web") / "last.png"))
        browser.close()


def test_a_model_that_failed_to_load_shows_as_failed_with_its_message(served, page):
    assert served.ready["failed"].keys() == {"question-answering"}  # the failure the page must show
    row = page.locator('#models li[data-task="question-answering"]')
    assert row.get_attribute("class") == "failed"
    assert "TaskMismatchError" in row.inner_text() and "no extractive question-answering head" in row.inner_text()
    assert "loading" not in row.inner_text()
    option = page.locator('#task option[value="/v1/answer"]')
    assert "failed" in option.inner_text() and "loading" not in option.inner_text()
    assert option.is_disabled()
    assert page.locator('#models li[data-task="sentiment"]').get_attribute("class") == "ready"
    assert page.locator('#models li[data-task="chat"]').get_attribute("class") == "ready"
    assert page.input_value("#task") != "/v1/answer"  # never chosen for the user


def test_two_lines_give_two_results_and_the_mode_is_shown(page):
    page.select_option("#task", "/v1/sentiment")
    reviews = ["the film was great", "the team was boring today"]
    page.fill("#text", "\n".join(reviews) + "\n")
    assert page.is_checked("#per-line")  # on by default for sentiment when several lines are pasted
    assert "one result per line (2 lines" in page.inner_text("#mode")
    with page.expect_request("**/v1/sentiment") as sent:
        page.click("#run")
    assert json.loads(sent.value.post_data)["inputs"] == reviews  # each line its own input
    page.wait_for_selector("#result .line-result")
    rows = page.locator("#result .line-result")
    assert rows.count() == 2
    for i, review in enumerate(reviews):
        row = rows.nth(i)
        assert row.locator(".line-text").inner_text() == review
        assert re.fullmatch(r"(POSITIVE|NEGATIVE) 0\.\d{3}", row.locator(".line-label").inner_text())
        assert sorted(row.locator(".bar .name").all_inner_texts()) == ["NEGATIVE", "POSITIVE"]

    page.uncheck("#per-line")  # the other mode: the whole text as one input, one result
    assert "whole text as one input (2 lines, one result)" in page.inner_text("#mode")
    with page.expect_request("**/v1/sentiment") as sent:
        page.click("#run")
    assert json.loads(sent.value.post_data)["inputs"] == "\n".join(reviews) + "\n"
    page.wait_for_function("!document.querySelector('#result .line-result') && document.querySelector('#result .bar')")
    assert page.locator("#result .bar").count() == 2


def test_the_chat_view_streams_the_answer_and_keeps_the_history(served, page):
    page.select_option("#task", "/v1/chat")
    assert page.is_visible("#chat") and not page.is_visible("#form")
    page.fill("#max-tokens", "180")
    # Record the answer's text at every DOM change while it streams.
    page.evaluate("""() => {
        window.seen = [];
        new MutationObserver(() => {
            const answer = document.querySelector('#chat-log .msg.assistant.streaming .content');
            if (answer) window.seen.push(answer.textContent);
        }).observe(document.querySelector('#chat-log'), {subtree: true, childList: true, characterData: true});
    }""")
    page.fill("#chat-input", "Hello there")
    page.click("#chat-send")
    page.wait_for_selector("#chat-log .msg.assistant:not(.streaming)")
    final = page.locator("#chat-log .msg.assistant .content").inner_text()
    seen = [text for text in dict.fromkeys(page.evaluate("window.seen")) if text]
    assert len(seen) >= 2, f"the answer appeared in one piece: {seen}"  # it grew while it streamed...
    assert all(final.startswith(text) for text in seen) and len(seen[0]) < len(final)  # ...towards the final text
    # The same greedy answer the API gives without streaming.
    status, body = request(
        served.url,
        "POST",
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 180},
    )
    assert status == 200 and final == body["choices"][0]["message"]["content"]
    assert "token limit" in page.inner_text("#chat-log .msg.assistant .note")  # the tiny model never ends by itself

    page.fill("#max-tokens", "8")
    page.fill("#chat-input", "And then?")
    with page.expect_request("**/v1/chat/completions") as sent:
        page.press("#chat-input", "Enter")
    history = json.loads(sent.value.post_data)
    assert history["stream"] is True
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user"]
    assert history["messages"][1]["content"] == final
    page.wait_for_function("document.querySelectorAll('#chat-log .msg.assistant:not(.streaming)').length === 2")

    page.fill("#max-tokens", "100000")  # over the server's limit: its message, shown as the other modes show errors
    page.fill("#chat-input", "Too long")
    page.click("#chat-send")
    page.wait_for_selector("#result .error")
    assert "--max-new-tokens" in page.inner_text("#result .error")
    assert page.input_value("#chat-input") == "Too long"  # not lost
    assert page.locator("#chat-log .msg").count() == 4

    page.click("#chat-new")
    assert page.locator("#chat-log .msg").count() == 0
    assert page.locator("#conversations button").all_inner_texts() == ["Hello there", "New conversation"]
