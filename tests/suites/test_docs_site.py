"""The manual as a site: `mkdocs build --strict` passes (a broken link, a missing page or an API reference that
cannot be generated fails it), and `mkdocs serve` serves pages that a real browser renders, with no broken link."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from hfapps.cli.sharding import free_port

from conftest import need_module
from servers import chromium_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def mkdocs(*args: str, **kwargs) -> subprocess.CompletedProcess:
    need_module("mkdocs")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
        **kwargs,
    )


def test_the_site_builds_strictly_with_its_api_reference(tmp_path):
    done = mkdocs("build", "--strict", "--site-dir", str(tmp_path / "site"))
    assert done.returncode == 0, done.stderr[-4000:]
    helpers = (tmp_path / "site" / "reference" / "helpers" / "index.html").read_text(encoding="utf-8")
    # generated from the docstrings: the signature and the words of hfapps.api.sentiment's docstring
    assert "hfapps.api.sentiment" in helpers and "top_k=N" in helpers
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "make quickstart" in home and "fonts.googleapis.com" not in home  # it reads offline


def internal_links(url: str, html: str) -> set[str]:
    """The links of a page that stay on the site, resolved, without their #fragment."""
    base = urllib.parse.urlsplit(url)
    found = set()
    for href in re.findall(r'href="([^"]+)"', html):
        target = urllib.parse.urlsplit(urllib.parse.urljoin(url, href))
        if target.scheme in ("http", "https") and target.netloc == base.netloc:
            found.add(urllib.parse.urlunsplit((target.scheme, target.netloc, target.path, target.query, "")))
    return found


@pytest.mark.slow
def test_mkdocs_serve_renders_in_a_real_browser_with_no_broken_link(tmp_path):
    sync_api = need_module("playwright.sync_api")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "serve", "--no-livereload", "-a", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(base, timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"mkdocs serve did not come up: {server.stdout.read()}") from None
                time.sleep(0.5)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
            page = browser.new_page()
            pages = {}
            for path, heading, text in (
                ("", "hfapps", "The manual"),
                ("reference/helpers/", "Helpers", "hfapps.api.sentiment"),
            ):
                page.goto(base + path)
                assert page.inner_text("article h1").rstrip("¶") == heading  # ¶: the permalink
                assert text in page.inner_text("article")
                assert page.locator("nav.md-nav").count() > 0  # the theme's navigation rendered
                pages[base + path] = page.content()
            page.screenshot(path=str(tmp_path / "reference.png"))
            browser.close()
        links = set().union(*(internal_links(url, html) for url, html in pages.items()))
        assert len(links) > 15, links  # the navigation's pages, at least
        broken = []
        for link in sorted(links):
            try:
                urllib.request.urlopen(link, timeout=30)
            except urllib.error.HTTPError as err:
                broken.append(f"{link}: {err.code}")
        assert not broken, broken
    finally:
        server.terminate()
        server.wait(timeout=30)
