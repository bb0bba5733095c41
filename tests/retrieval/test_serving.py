"""The retrieval routes on a real HTTP server (uvicorn on a loopback port), spoken to by the official `openai`
client and plain HTTP: embeddings in OpenAI's shape (base64 by default, floats on request), rerank, search, ask."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import numpy as np
import pytest

from hfapps.retrieval.helpers import embed, rerank
from hfapps.retrieval.index import Index
from hfapps.serving.app import create_app
from hfapps.serving.config import ServeConfig
from hfapps.serving.retrieval import add_routes


@pytest.fixture
def server(tmp_path, retrieval_models, documents):
    import uvicorn

    from hfapps.cli.sharding import free_port

    folder = str(tmp_path / "ix")
    with Index(folder, model=retrieval_models["embedder"]) as index:
        index.add(documents)
    config = ServeConfig(
        models=[
            ("embedding", retrieval_models["embedder"]),
            ("reranking", retrieval_models["cross_encoder"]),
            ("question-answering", retrieval_models["qa"]),
        ],
        max_texts=8,
    )
    app = create_app(config)
    add_routes(app, app.state.served, config, {"docs": folder})
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/ready") as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    yield url
    uv.should_exit = True
    thread.join(timeout=30)


def _post(url, path, body):
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_openai_client_embeddings(server, retrieval_models):
    from openai import OpenAI

    client = OpenAI(base_url=server + "/v1", api_key="unused")
    texts = ["a cat sat", "the zebra has stripes", "x"]
    expected = embed(texts, model=retrieval_models["embedder"])
    default = client.embeddings.create(model="tiny", input=texts)  # the client asks for base64, decodes it
    floats = client.embeddings.create(model="tiny", input=texts, encoding_format="float")
    assert np.allclose([d.embedding for d in default.data], expected, atol=1e-6)
    assert np.allclose([d.embedding for d in floats.data], expected, atol=1e-6)
    assert [d.index for d in default.data] == [0, 1, 2] and default.usage.prompt_tokens > 3
    one = client.embeddings.create(model="tiny", input="a cat sat", dimensions=8)
    assert len(one.data[0].embedding) == 8
    assert np.isclose(np.linalg.norm(one.data[0].embedding), 1.0, atol=1e-5)


def test_limits_and_errors_keep_the_servers_shape(server):
    status, body = _post(server, "/v1/embeddings", {"input": ["a"] * 9, "model": "x"})
    assert status == 422 and "--max-texts" in body["error"]["message"]
    status, body = _post(server, "/v1/embeddings", {"input": ["fine", ""], "model": "x"})
    assert status == 422 and "index 1" in body["error"]["message"]
    status, body = _post(server, "/v1/indexes/nope/search", {"query": "x"})
    assert status == 404 and body["error"]["type"] == "UnknownIndex"


def test_rerank_search_and_ask(server, retrieval_models, documents):
    texts = [d["text"] for d in documents]
    status, body = _post(server, "/v1/rerank", {"query": "capital", "documents": texts, "top_n": 3})
    assert status == 200
    expected = rerank("capital", texts, model=retrieval_models["cross_encoder"], top_k=3)
    assert [r["index"] for r in body["results"]] == [r["index"] for r in expected]
    status, body = _post(server, "/v1/indexes/docs/search", {"query": "zebra stripes", "k": 2, "mode": "bm25"})
    assert status == 200 and body["hits"][0]["id"] == "zebra"
    status, body = _post(server, "/v1/indexes/docs/search", {"query": "city", "k": 3, "rerank": True})
    assert status == 200 and len(body["hits"]) == 3
    status, body = _post(server, "/v1/ask", {"question": "Where does the zebra live?", "k": 3})
    assert status == 200 and body["id"] == "zebra" and body["answer"].lower().startswith("zebra")
