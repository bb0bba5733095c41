"""`hfapps.Client`: the helpers over HTTP, with the same results and errors."""

from __future__ import annotations

import pytest

import hfapps

TEXTS = ["the film was great", "this phone is terrible today", "a zebra", "our hotel seemed quiet in Paris"]


def test_the_client_matches_the_helpers(server, tiny):
    client = hfapps.Client(server.url)
    assert client.health() and client.ready()
    assert client.sentiment(TEXTS) == hfapps.sentiment(TEXTS, model=tiny["classifier"])
    assert client.sentiment(TEXTS[0]) == hfapps.sentiment(TEXTS[0], model=tiny["classifier"])
    assert list(client.sentiment(iter(TEXTS * 40))) == hfapps.sentiment(TEXTS * 40, model=tiny["classifier"])
    assert client.answer(question="what is it?", context="It was a zebra.") == hfapps.answer(
        question="what is it?", context="It was a zebra.", model=tiny["qa"]
    )
    assert client.summarize(TEXTS, max_new_tokens=3) == hfapps.summarize(TEXTS, model=tiny["t5"], max_new_tokens=3)
    with pytest.raises(hfapps.InputError, match="index 1 is empty"):
        client.sentiment(["fine", ""])
    with pytest.raises(hfapps.ServerError) as err:
        client.translate("hello")
    assert err.value.status == 404
    with pytest.raises(hfapps.ServerError, match="Could not reach"):
        hfapps.Client("http://127.0.0.1:9").sentiment("x")
