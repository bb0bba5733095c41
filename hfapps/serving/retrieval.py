"""The retrieval endpoints of `hfapps serve`: `POST /v1/embeddings` (OpenAI's shape), `POST /v1/rerank`,
`GET /v1/indexes` (the served indexes, which the web page offers to ask), `POST /v1/indexes/{name}/search` and
`POST /v1/ask`.

They run on the served tasks' own batchers (concurrent requests share batches), under the server's limits, key
and error shape (`{"error": {"type", "message"}}`). `/v1/embeddings` takes and returns what OpenAI's does, so the
official `openai` client works unchanged: it asks for base64 by default (little-endian float32), which is also
the smaller answer. An index is opened on first use and embeds queries with the model it records. The command
that serves them is `hfapps serve --model embed=sentence-transformers/all-MiniLM-L6-v2 --index docs=my_index`.
"""

# No `from __future__ import annotations`: FastAPI reads the request bodies' types from the signatures.
import asyncio
import base64
import threading
from typing import Any, Literal, Union

import numpy as np

from ..errors import HfappsError, InputError
from .guard import error


def add_routes(app: Any, served: dict[str, Any], config: Any, indexes: dict[str, str] | None = None) -> None:
    """Add the retrieval routes to `app` (from `create_app`: its served tasks by name, its config) for the indexes
    `{name: folder or URL}`. They are put before the generic `/v1/{task}` route, whose paths they share."""
    from pydantic import BaseModel, ConfigDict, Field

    indexes = dict(indexes or {})
    opened: dict[str, Any] = {}
    opening = threading.Lock()
    before = len(app.router.routes)

    class EmbeddingsRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        input: Union[str, list[str], list[int], list[list[int]]]
        model: str = ""
        encoding_format: Literal["float", "base64"] = "float"
        dimensions: Union[int, None] = Field(None, ge=1)
        user: Union[str, None] = None

    class RerankRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        query: str
        documents: list[str]
        top_n: Union[int, None] = Field(None, ge=1)
        return_documents: bool = True

    class SearchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        query: str
        k: int = Field(10, ge=1, le=1000)
        mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
        filter: Union[str, dict[str, Any], None] = None
        rerank: bool = False

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question: str
        index: Union[str, None] = None
        k: int = Field(5, ge=1, le=100)
        mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
        filter: Union[str, dict[str, Any], None] = None
        rerank: bool = False

    def entry_for(name: str, flag: str) -> Any:
        entry = served.get(name)
        if entry is None:
            return error(404, "UnknownTask", f"No {name} model is served; start the server with --model {flag}=MODEL.")
        if entry.task is None:
            state = f"not loaded: {entry.error}" if entry.error else "still loading"
            return error(503, "NotReady", f"{name} is {state}.")
        return entry

    def limits(texts: list[str]) -> Any:
        if len(texts) > config.max_texts:
            return error(
                422, "InputError", f"{len(texts)} inputs is over the limit of {config.max_texts} (--max-texts)."
            )
        for i, text in enumerate(texts):
            if len(text) > config.max_chars:
                return error(422, "InputError", f"Input {i} has {len(text)} characters, over {config.max_chars}.")
        return None

    async def batched(entry: Any, items: list[Any], options: dict[str, Any]) -> Any:
        try:
            checked = [entry.task._check(item, i) for i, item in enumerate(items)]
            return await entry.batcher.submit(checked, options)
        except HfappsError as err:
            return error(422, type(err).__name__, str(err))

    def index_named(name: str) -> Any:
        from ..retrieval.index import Index

        with opening:
            if name not in opened:
                embedder = getattr(served.get("embedding"), "task", None)
                index = Index(indexes[name])
                served_model = getattr(embedder, "fingerprint", None)
                if index.properties is not None and served_model == index.properties["model_fingerprint"]:
                    index._embedder = embedder  # the served model is the index's: load it once
                opened[name] = index
            return opened[name]

    async def in_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: function(*args, **kwargs))

    @app.post("/v1/embeddings", summary="embeddings, in OpenAI's request and response shape")
    async def embeddings(body: EmbeddingsRequest) -> Any:
        entry = entry_for("embedding", "embed")
        if not hasattr(entry, "task"):
            return entry
        given: list[Any] = [body.input] if isinstance(body.input, str) else list(body.input)
        texts = [t for t in given if isinstance(t, str)]
        if not texts or len(texts) != len(given):
            return error(
                422, "InputError", "input must be a string or a non-empty list of strings (token ids are not taken)."
            )
        refused = limits(texts)
        if refused is not None:
            return refused
        vectors = await batched(entry, texts, {})
        if not isinstance(vectors, list):  # an error response
            return vectors
        matrix = np.asarray(vectors, dtype=np.float32)
        if body.dimensions is not None:
            if body.dimensions > matrix.shape[1]:
                return error(422, "InputError", f"dimensions={body.dimensions} is over the model's {matrix.shape[1]}.")
            matrix = matrix[:, : body.dimensions]  # Matryoshka-style: the first dimensions, made unit length again
            matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        tokens = sum(len(ids) for ids in entry.task.tokenizer(texts)["input_ids"])
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
                if body.encoding_format == "base64"
                else row.tolist(),
            }
            for i, row in enumerate(matrix)
        ]
        return {
            "object": "list",
            "data": data,
            "model": body.model or entry.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    @app.post("/v1/rerank", summary="score documents against a query with the served cross-encoder")
    async def rerank(body: RerankRequest) -> Any:
        entry = entry_for("reranking", "rerank")
        if not hasattr(entry, "task"):
            return entry
        refused = limits([body.query, *body.documents])
        if refused is not None:
            return refused
        scores = await batched(entry, [{"query": body.query, "document": d} for d in body.documents], {})
        if not isinstance(scores, list):
            return scores
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: body.top_n or len(scores)]
        results = [
            {
                "index": i,
                "relevance_score": scores[i],
                **({"document": body.documents[i]} if body.return_documents else {}),
            }
            for i in order
        ]
        return {"results": results, "model": entry.model}

    @app.get("/v1/indexes", summary="the served indexes, and the reader /v1/ask answers with")
    async def list_indexes() -> Any:
        reader = served.get("question-answering") or served.get("summarization")
        return {
            "object": "list",
            "data": [{"name": name} for name in indexes],
            "reader": getattr(reader, "model", None),
        }

    @app.post("/v1/indexes/{name}/search", summary="search a served index")
    async def search(name: str, body: SearchRequest) -> Any:
        if name not in indexes:
            return error(404, "UnknownIndex", f"No index {name!r} is served; this server has {sorted(indexes)}.")
        reranker = None
        if body.rerank:
            entry = entry_for("reranking", "rerank")
            if not hasattr(entry, "task"):
                return entry
            reranker = entry.task
        try:
            index = await in_thread(index_named, name)
            hits = await in_thread(
                index.search, body.query, k=body.k, mode=body.mode, filter=body.filter, rerank=reranker
            )
        except HfappsError as err:
            return error(422, type(err).__name__, str(err))
        return {"index": name, "hits": hits}

    @app.post("/v1/ask", summary="answer a question from a served index")
    async def ask(body: AskRequest) -> Any:
        from ..retrieval.ask import ask as answer

        name = body.index or (next(iter(indexes)) if len(indexes) == 1 else None)
        if name not in indexes:
            return error(404, "UnknownIndex", f"Name one of the served indexes {sorted(indexes)} as index.")
        reader = served.get("question-answering") or served.get("summarization")
        if reader is None or reader.task is None:
            return error(404, "UnknownTask", "No reader is served; start the server with --model answer=QA_MODEL.")
        reranker = served["reranking"].task if body.rerank and "reranking" in served else None
        try:
            index = await in_thread(index_named, name)
            return await in_thread(
                answer,
                body.question,
                index=index,
                reader=reader.task,
                k=body.k,
                mode=body.mode,
                filter=body.filter,
                rerank=reranker,
            )
        except (HfappsError, InputError) as err:
            return error(422, type(err).__name__, str(err))

    # Ours first: the generic `/v1/{task}` route would otherwise answer these paths.
    ours = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = ours
