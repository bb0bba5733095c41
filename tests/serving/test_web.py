"""The web page, in a real headless Chromium against a real server."""

from __future__ import annotations

import pytest

from conftest import need_module
from servers import chromium_path


@pytest.mark.slow
def test_the_web_page_in_a_real_browser(server, tmp_path):
    """Headless Chromium opens the page, runs sentiment and QA, and finds the label and the highlighted answer."""
    sync_api = need_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(server.url + "/")
        page.select_option("#task", "/v1/sentiment")
        page.fill("#text", "the film was great")
        page.click("#run")
        page.wait_for_selector("#result .bar")
        names = page.locator("#result .bar .name").all_inner_texts()
        assert sorted(names) == ["NEGATIVE", "POSITIVE"]
        page.screenshot(path=str(tmp_path / "sentiment.png"))
        page.select_option("#task", "/v1/answer")
        page.fill("#question", "what is it?")
        page.fill("#text", "It was a zebra in Paris.")
        page.click("#run")
        page.wait_for_selector("#result mark")
        assert page.inner_text("#result mark") == "zebra"
        page.screenshot(path=str(tmp_path / "answer.png"))
        browser.close()
    assert (tmp_path / "answer.png").stat().st_size > 1000
