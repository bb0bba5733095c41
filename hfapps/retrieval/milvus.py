"""What hfapps asks of Milvus: connecting (a folder through Milvus Lite, or a server URL), the collection's
schema and recorded properties, rows in and hits out, and filter expressions. Everything pymilvus-shaped is here.

Milvus Lite 3 is a pure-Python Milvus in a background thread of this process, reached over gRPC on 127.0.0.1 by
the same `MilvusClient` that reaches a server; so embedded and server modes differ only in the URI handed to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from ..errors import IndexDamagedError, InputError, ModelLoadError

#: Bumped when the collection's fields or their meaning change; an index of another layout is refused.
LAYOUT = "1"
#: The collection properties hfapps records (Milvus Lite keeps properties; it drops descriptions).
PROPERTIES = ("model", "model_fingerprint", "dimension", "normalize", "layout")
#: The longest text Milvus stores in a VARCHAR field, in bytes.
MAX_TEXT_BYTES = 65535
MAX_ID_LENGTH = 512
#: HNSW build settings, and the search breadth (at least k).
HNSW = {"M": 16, "efConstruction": 200}
EF_SEARCH = 128
BM25 = {"bm25_k1": 1.2, "bm25_b": 0.75}


def _milvus() -> Any:
    import pymilvus

    return pymilvus


def connect(target: str, *, token: str | None, embedded: bool) -> Any:
    """A `MilvusClient` for a folder (Milvus Lite started in this process) or a server URL."""
    pymilvus = _milvus()
    uri = target
    if embedded:
        from milvus_lite.server_manager import server_manager_instance

        os.makedirs(target, exist_ok=True)
        uri = server_manager_instance.start_and_get_uri(target)
        if uri is None:
            raise InputError(
                f"Milvus Lite could not open {target}: another process has it open (one process at a time holds "
                "an index folder). Stop that process, or serve the folder to several processes with "
                f"`milvus-lite server --host 127.0.0.1 --port 19530 --data-dir {target}` and use "
                "hfapps.Index('http://127.0.0.1:19530')."
            )
    try:
        return pymilvus.MilvusClient(uri=uri, token=token or "")
    except pymilvus.exceptions.MilvusException as err:
        raise ModelLoadError(
            f"Could not reach Milvus at {target} ({err.message}). Start the server, or check the URL and --token."
        ) from err


def release(target: str) -> None:
    """Stop this process's Milvus Lite for `target`: it flushes and closes its files."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(target)


def open_collection(client: Any, name: str, target: str) -> dict[str, Any] | None:
    """The recorded properties of an existing collection (loaded for search), or None when there is none yet."""
    pymilvus = _milvus()
    try:
        if not client.has_collection(name):
            return None
        described = client.describe_collection(name)
        client.load_collection(name)
    except pymilvus.exceptions.MilvusException as err:
        raise IndexDamagedError(
            f"Milvus could not read the index {name!r} in {target}: {err.message}. It is not searched. Restore the "
            "folder from a backup, or rebuild it from your documents (`hfapps index add NEW_FOLDER --input "
            "docs.jsonl`)."
        ) from err
    properties = {
        k.removeprefix("hfapps."): v for k, v in (described.get("properties") or {}).items() if k.startswith("hfapps.")
    }
    if "layout" not in properties:
        raise InputError(
            f"The collection {name!r} in {target} was not made by hfapps (it has no hfapps.* properties). Name "
            "another collection (collection=...), or build a new index."
        )
    return properties


def check_layout(properties: dict[str, Any], target: str) -> None:
    if properties.get("layout") != LAYOUT:
        raise InputError(
            f"The index in {target} has hfapps index layout {properties.get('layout')}, this hfapps reads layout "
            f"{LAYOUT}. Rebuild it from your documents with this version (`hfapps index add NEW_FOLDER --input "
            "docs.jsonl`), or use the hfapps version that built it."
        )


def create_collection(
    client: Any, name: str, *, model: str, fingerprint: str, dimension: int, normalize: bool
) -> dict[str, Any]:
    """A new collection: id, text (BM25 analysed), dense vector (HNSW, cosine), BM25 sparse vector, metadata."""
    from bm25s.stopwords import STOPWORDS_EN

    pymilvus = _milvus()
    DataType = pymilvus.DataType
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_LENGTH)
    schema.add_field(
        "text",
        DataType.VARCHAR,
        max_length=MAX_TEXT_BYTES,
        enable_analyzer=True,
        analyzer_params={
            "tokenizer": "standard",
            "filter": ["lowercase", {"type": "stop", "stop_words": list(STOPWORDS_EN)}],
        },
    )
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("metadata", DataType.JSON)
    schema.add_function(
        pymilvus.Function(
            name="bm25",
            function_type=pymilvus.FunctionType.BM25,
            input_field_names=["text"],
            output_field_names=["sparse"],
        )
    )
    indexes = client.prepare_index_params()
    indexes.add_index("dense", index_type="HNSW", metric_type="COSINE", params=HNSW)
    indexes.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25)
    properties = {
        "model": model,
        "model_fingerprint": fingerprint,
        "dimension": str(dimension),
        "normalize": str(normalize).lower(),
        "layout": LAYOUT,
    }
    client.create_collection(
        name, schema=schema, index_params=indexes, properties={f"hfapps.{k}": v for k, v in properties.items()}
    )
    client.load_collection(name)
    return properties


def row_of(document: dict[str, Any] | str, position: int) -> dict[str, Any]:
    """A Milvus row (id, text, metadata) from a document; the id of a document without one is its text's hash."""
    if isinstance(document, str):
        document = {"text": document}
    if not isinstance(document, dict):
        raise InputError(f"Document {position} must be a dict with 'text' (and 'id'), got {document!r:.80}.")
    text = document.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"Document {position} has no text (a non-empty 'text' string); got {text!r:.80}.")
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise InputError(
            f"Document {position} is {len(text.encode('utf-8'))} bytes; a document holds at most {MAX_TEXT_BYTES}. "
            "Split long documents into passages (a few hundred words each) before adding them."
        )
    key = document.get("id")
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] if key is None else str(key)
    if not key or len(key) > MAX_ID_LENGTH:
        raise InputError(f"Document {position}: an id is 1 to {MAX_ID_LENGTH} characters, got {key!r:.80}.")
    metadata = {k: v for k, v in document.items() if k not in ("id", "text")}
    try:
        json.dumps(metadata)
    except TypeError as err:
        raise InputError(f"Document {position}: its metadata must be JSON ({err}).") from err
    return {"id": key, "text": text, "metadata": metadata}


def document_of(row: dict[str, Any]) -> dict[str, Any]:
    entity = row.get("entity", row)
    return {"id": row.get("id", entity.get("id")), "text": entity.get("text"), "metadata": entity.get("metadata") or {}}


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise InputError(f"A filter value is a string, number or boolean (or a list of them), got {value!r:.60}.")


def expression(filter: str | dict[str, Any] | None) -> str:
    """A Milvus filter expression: given as one, or from `{"key": value}` / `{"key": [v1, v2]}` (equalities on
    metadata, all of them must hold; a list is any of its values)."""
    if filter is None or isinstance(filter, str):
        return filter or ""
    if not isinstance(filter, dict):
        raise InputError(f"filter is a Milvus expression or a dict of metadata values, got {filter!r:.60}.")
    parts = []
    for key, value in filter.items():
        field = f"metadata[{json.dumps(str(key))}]"
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise InputError(f"filter {key!r}: an empty list matches nothing.")
        # Milvus Lite takes no `in` on a JSON key: an `or` chain means the same.
        parts.append("(" + " or ".join(f"{field} == {_literal(v)}" for v in values) + ")")
    return " and ".join(parts)


def count(client: Any, collection: str) -> int:
    return int(client.query(collection, filter="", output_fields=["count(*)"])[0]["count(*)"])


def _hits(result: Any, *, bm25: bool = False) -> list[list[dict[str, Any]]]:
    found = []
    for hits in result:
        # Milvus Lite returns BM25 scores negated (a server, positive); a BM25 score is never below 0.
        scores = [float(hit.get("distance", 0.0)) for hit in hits]
        found.append([{**document_of(hit), "score": abs(s) if bm25 else s} for hit, s in zip(hits, scores)])
    return found


def search_dense(
    client: Any, collection: str, vectors: np.ndarray, limit: int, expression: str
) -> list[list[dict[str, Any]]]:
    result = client.search(
        collection,
        data=[v.tolist() for v in np.asarray(vectors, dtype=np.float32)],
        anns_field="dense",
        limit=limit,
        filter=expression,
        output_fields=["text", "metadata"],
        search_params={"metric_type": "COSINE", "params": {"ef": max(EF_SEARCH, limit)}},
    )
    return _hits(result)


def search_bm25(
    client: Any, collection: str, texts: list[str], limit: int, expression: str
) -> list[list[dict[str, Any]]]:
    result = client.search(
        collection,
        data=list(texts),
        anns_field="sparse",
        limit=limit,
        filter=expression,
        output_fields=["text", "metadata"],
        search_params={"metric_type": "BM25"},
    )
    return _hits(result, bm25=True)


Hits = list[list[dict[str, Any]]]


class _Caller:
    __slots__ = ("queries", "event", "lead", "hits", "error")

    def __init__(self, queries: list[Any]) -> None:
        self.queries = queries
        self.event = threading.Event()
        self.lead = False
        self.hits: Hits = []
        self.error: BaseException | None = None

    def result(self) -> Hits:
        if self.error is not None:
            raise self.error
        return self.hits


class SharedSearch:
    """Searches that arrive while one of the same kind runs wait for it, then go to Milvus together, as one call.

    Milvus Lite spends most of a search on a pass in Python over every row of the collection (which rows are
    current, which are deleted), about 1 microsecond a row, once per call whatever the number of queries in it;
    and it holds the GIL while it does, so concurrent one-query calls run one after another. Callers that share a
    call pay that pass once. A caller alone is not delayed: its call starts at once. `run(key, queries)` makes
    the call; `key` holds what the queries of one call must share (the field searched, the limit, the filter).
    """

    def __init__(self, run: Callable[[Hashable, list[Any]], Hits]) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._waiting: dict[Hashable, list[_Caller]] = {}
        self._running: set[Hashable] = set()

    def __call__(self, key: Hashable, queries: list[Any]) -> Hits:
        me = _Caller(queries)
        with self._lock:
            self._waiting.setdefault(key, []).append(me)
            lead = key not in self._running
            self._running.add(key)
        if not lead:
            me.event.wait()
            if not me.lead:  # answered by another caller's call
                return me.result()
        with self._lock:  # lead: take every caller waiting for this key, this one included
            callers = self._waiting.pop(key)
        try:
            found = self._run(key, [q for caller in callers for q in caller.queries])
            start = 0
            for caller in callers:
                caller.hits = found[start : start + len(caller.queries)]
                start += len(caller.queries)
        except BaseException as err:
            for caller in callers:
                caller.error = err
        finally:
            with self._lock:  # those who came during this call: the first of them leads the next one
                queued = self._waiting.get(key)
                if queued:
                    queued[0].lead = True
                    queued[0].event.set()
                else:
                    self._running.discard(key)
            for caller in callers:
                caller.event.set()
        return me.result()
