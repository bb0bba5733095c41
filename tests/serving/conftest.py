"""The server the serving tests talk to: `hfapps serve` as its own process on the tiny models, one per test module."""

import pytest

from servers import Server


@pytest.fixture(scope="module")
def server(tiny):
    running = Server(
        {"sentiment": tiny["classifier"], "answer": tiny["qa"], "summarize": tiny["t5"], "classify": tiny["nli"]},
        "--max-texts",
        "50",
        "--max-chars",
        "2000",
        "--max-wait-ms",
        "20",
    )
    yield running
    running.stop()
