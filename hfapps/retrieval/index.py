"""`hfapps.Index`: your documents and their vectors in Milvus: Milvus Lite in a folder, or a Milvus server by URL.

    index = hfapps.Index("my_index")                  # a folder: embedded, nothing to start
    index.add([{"id": "a1", "text": "...", "lang": "en"}, ...])
    index.search("how do I ...", k=5)                  # hybrid: dense + BM25, fused by reciprocal rank
    index = hfapps.Index("http://127.0.0.1:19530")    # the same API on a Milvus server

One code path for both: pymilvus's `MilvusClient` drives Milvus Lite embedded (a folder) and a server (a URL).
The collection holds the id (primary key, so adding is an upsert and a rerun adds no duplicates), the text, its
dense vector (HNSW, cosine), a BM25 sparse vector that Milvus computes from the text itself, and the metadata (a
JSON field; filter with Milvus expressions such as `metadata["lang"] == "en"`, or a dict of equalities). The
embedding model's name, fingerprint, dimension and normalisation, and hfapps' layout version, are collection
properties, checked on every open and query: a query is never embedded by another model. In a folder, hfapps
also keeps a ledger (`ledger.py`) that reports damage Milvus Lite would accept, and lets an interrupted add resume.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..api import load
from ..errors import IndexDamagedError, IndexMismatchError, InputError, ModelLoadError
from ..inference.inputs import chunked
from ..tasks.base import Task
from ..tasks.embedding import Embedding
from . import ledger as ledgers
from . import milvus
from .fusion import RRF_K, reciprocal_rank_fusion
from .ledger import Ledger

logger = logging.getLogger("hfapps")

MODES = ("hybrid", "dense", "bm25")
#: How many hits of each list hybrid search fuses (and reranking rereads), at least k.
FUSION_DEPTH = 100


def _is_url(target: str) -> bool:
    return target.startswith(("http://", "https://", "tcp://", "grpc://"))


class Index:
    """A searchable set of documents: a folder (Milvus Lite, embedded) or `http://host:port` (a Milvus server).

    `model`: the embedding model of a new index (default: the packaged all-MiniLM-L6-v2); an existing index
    embeds with the model it records, and refuses another. `collection`: several indexes can share a folder or
    server. `token`: a Milvus server's credentials ("user:password" or an API key).
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        model: str | os.PathLike[str] | Embedding | None = None,
        collection: str = "documents",
        token: str | None = None,
        device: str | None = None,
        batch_size: int = 32,
    ) -> None:
        self.target = os.fspath(target)
        self.collection = collection
        self.embedded = not _is_url(self.target)
        self._lock = threading.Lock()
        self._searches = milvus.SharedSearch(self._search_milvus)
        self._embedder: Embedding | None = model if isinstance(model, Embedding) else None
        self._model_arg = None if model is None or isinstance(model, Embedding) else os.fspath(model)
        self._load_settings = {"device": device, "batch_size": batch_size}
        self.ledger: Ledger | None = None
        if self.embedded:
            self.target = os.path.abspath(self.target)
            if os.path.isfile(self.target):
                raise InputError(
                    f"{self.target} is a file; an hfapps index is a folder (Milvus Lite 3). Give a new folder name, "
                    "and add your documents to it again."
                )
            self.ledger = Ledger.read(self.target, collection) if os.path.isdir(self.target) else None
            if self.ledger is not None:
                ledgers.verify(self.target, self.ledger)
        self.client = milvus.connect(self.target, token=token, embedded=self.embedded)
        try:
            self.properties = milvus.open_collection(self.client, collection, self.target)
        except BaseException:
            self.client.close()
            raise
        rows = self.count() if self.embedded else 0
        if self.properties is not None:
            self._check_model_given()
            self._check_rows(rows)
        if self.embedded:  # open: Milvus Lite may rewrite its files from now on, so they are checked by count
            if self.ledger is None:  # a new index (or one whose ledger was lost: it starts from what is there)
                self.ledger = Ledger(collection)
            # What `add` counts from: counting a collection is a pass over all its rows, too slow once per batch.
            self.ledger.rows = rows
            self.ledger.clean, self.ledger.checksums = False, {}
            self.ledger.write(self.target)

    # -- opening ---------------------------------------------------------------------------------------------

    def _check_model_given(self) -> None:
        assert self.properties is not None
        milvus.check_layout(self.properties, self.target)
        if self._embedder is None and self._model_arg is None:
            return
        embedder = self.embedder
        recorded = self.properties
        same = embedder.fingerprint == recorded["model_fingerprint"]
        if not same or int(recorded["dimension"]) != embedder.dimension:
            raise IndexMismatchError(
                f"The index {self.target} ({self.collection}) was built with {recorded['model']!r} "
                f"({recorded['dimension']} dimensions, fingerprint {recorded['model_fingerprint']}), not with "
                f"{embedder.ref.name!r} ({embedder.dimension} dimensions, fingerprint {embedder.fingerprint}); "
                "its vectors and your queries would not be comparable. Open it without model= (it embeds with "
                "its own model), or build a new index with this model."
            )

    def _check_rows(self, rows: int) -> None:
        if self.ledger is None:
            return
        if rows < self.ledger.rows:
            raise IndexDamagedError(
                f"The index in {self.target} holds {rows} documents, but {self.ledger.rows} were committed: Milvus "
                "Lite lost rows (a damaged or missing manifest or segment). It is not searched. Restore the folder "
                "from a backup, or rebuild it from your documents (`hfapps index add NEW_FOLDER --input docs.jsonl`)."
            )

    @property
    def embedder(self) -> Embedding:
        """The model that embeds this index's documents and queries (loaded on first use)."""
        if self._embedder is None:
            name = self._model_arg
            if name is None:
                name = self.properties["model"] if self.properties else Embedding.default_model
            settings = {k: v for k, v in self._load_settings.items() if v is not None}
            try:
                loaded = load("embedding", name, **settings)  # type: ignore[arg-type]
                assert isinstance(loaded, Embedding)
                self._embedder = loaded
            except ModelLoadError as err:
                raise ModelLoadError(
                    f"This index embeds with {name!r}, which cannot be loaded here ({err}). Make that model "
                    "available, or rebuild the index with another one."
                ) from err
            if self.properties and self._model_arg is None:
                self._check_model_given()
        return self._embedder

    # -- writing ---------------------------------------------------------------------------------------------

    def add(
        self,
        documents: Iterable[dict[str, Any] | str],
        *,
        vectors: np.ndarray | None = None,
        batch_size: int = 256,
        progress: bool = False,
    ) -> int:
        """Add or replace documents (`{"id", "text", ...metadata}`; a plain string is its own text, with an id from
        its hash), in committed batches of `batch_size`; return how many were written. `vectors`: your own (one
        row per document, from the index's model) instead of embedding the texts. A batch the ledger already holds
        (a rerun of an interrupted add) is skipped."""
        if isinstance(documents, (str, dict)):
            raise InputError("add() takes a list (or iterable) of documents; wrap one document in a list.")
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}.")
        written, offset = 0, 0
        for chunk in chunked(documents, batch_size):
            rows = [milvus.row_of(document, offset + i) for i, document in enumerate(chunk)]
            own = None if vectors is None else np.asarray(vectors[offset : offset + len(rows)], dtype=np.float32)
            offset += len(rows)
            key = ledgers.batch_key(rows)
            if self.ledger is not None and key in self.ledger.batches:
                continue
            if own is None:
                embedded = self.embedder.encode([row["text"] for row in rows], **self._prompt("document"))
            else:
                embedded = own
            self._ensure_collection(int(embedded.shape[1]))
            self._check_vectors(embedded, len(rows))
            for row, vector in zip(rows, embedded):
                row["dense"] = vector.tolist()
            with self._lock:
                new = self._new_ids(rows)
                self.client.upsert(self.collection, rows)
                if self.ledger is not None:
                    self.ledger.batches.append(key)
                    self.ledger.rows += new
                    self.ledger.write(self.target)
            written += len(rows)
            if progress:
                logger.warning("%d documents written to %s", offset, self.target)
        return written

    def _new_ids(self, rows: list[dict[str, Any]]) -> int:
        """How many of these rows' ids the index does not hold yet (what their upsert adds to its count)."""
        if self.ledger is None:
            return 0
        ids = list({row["id"] for row in rows})
        present = self.client.get(self.collection, ids=ids, output_fields=["id"])
        return len(ids) - len(present)

    def delete(self, ids: Iterable[str] | None = None, *, filter: str | dict[str, Any] | None = None) -> int:
        """Delete documents by id, or those a filter matches; return how many were deleted."""
        if (ids is None) == (filter is None):
            raise InputError("delete() takes ids or filter=, one of them.")
        if self.properties is None:
            return 0
        with self._lock:
            if ids is not None:
                wanted = [str(i) for i in ([ids] if isinstance(ids, str) else ids)]
                present = [row["id"] for row in self.client.get(self.collection, ids=wanted, output_fields=["id"])]
                if present:
                    self.client.delete(self.collection, ids=present)
                deleted = len(present)
            else:
                result = self.client.delete(self.collection, filter=milvus.expression(filter))
                deleted = len(result) if isinstance(result, list) else int(result.get("delete_count", 0))
            if self.ledger is not None:  # deleted documents must come back if the same file is added again
                self.ledger.batches, self.ledger.rows = [], self.count()
                self.ledger.write(self.target)
        return deleted

    def _ensure_collection(self, dimension: int) -> None:
        if self.properties is not None:
            return
        embedder = self.embedder
        self.properties = milvus.create_collection(
            self.client,
            self.collection,
            model=embedder.ref.name,
            fingerprint=embedder.fingerprint,
            dimension=dimension,
            normalize=embedder.normalizes,
        )

    def _check_vectors(self, vectors: np.ndarray, rows: int) -> None:
        assert self.properties is not None
        dimension = int(self.properties["dimension"])
        if vectors.ndim != 2 or vectors.shape != (rows, dimension):
            raise InputError(
                f"Expected {rows} vectors of {dimension} dimensions (the index's model), got shape {vectors.shape}."
            )

    def _prompt(self, kind: str) -> dict[str, Any]:
        """sentence-transformers' convention: a model's "query" and "document" prompts, when it defines them."""
        return {"prompt_name": kind} if kind in getattr(self.embedder, "prompts", {}) else {}

    # -- reading ---------------------------------------------------------------------------------------------

    def count(self) -> int:
        if self.properties is None:
            return 0
        return milvus.count(self.client, self.collection)

    def __len__(self) -> int:
        return self.count()

    def get(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """The documents with these ids that the index holds (`{"id", "text", "metadata"}`)."""
        if self.properties is None:
            return []
        found = self.client.get(self.collection, ids=[str(i) for i in ids], output_fields=["id", "text", "metadata"])
        return [milvus.document_of(row) for row in found]

    def info(self) -> dict[str, Any]:
        """What the index is: where, how many documents, which model, and its ledger's state."""
        found: dict[str, Any] = {
            "target": self.target,
            "mode": "embedded (Milvus Lite)" if self.embedded else "server",
            "collection": self.collection,
            "documents": self.count(),
        }
        if self.properties:
            found.update({k: self.properties[k] for k in milvus.PROPERTIES if k in self.properties})
            found["dimension"] = int(found["dimension"])
            found["normalize"] = found["normalize"] == "true"
        if self.ledger is not None:
            found["committed_batches"] = len(self.ledger.batches)
        return found

    def search(
        self,
        query: str | list[str] | np.ndarray | list[float],
        *,
        k: int = 10,
        mode: str = "hybrid",
        filter: str | dict[str, Any] | None = None,
        weights: tuple[float, float] = (1.0, 1.0),
        rrf_k: float = RRF_K,
        rerank: str | os.PathLike[str] | Task | None = None,
        rerank_depth: int = 50,
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """Hits `{"id", "score", "text", "metadata"}`, best first, for one query (a list of hit lists for a list).

        `mode`: "hybrid" (dense and BM25 fused by reciprocal rank, `weights` = (dense, BM25), `rrf_k`), "dense"
        (the query embedded by the index's model, cosine) or "bm25". A vector (one row of the model's dimension)
        searches dense. `filter`: a Milvus expression (`metadata["lang"] == "en"`) or `{"lang": "en"}`. `rerank`:
        a cross-encoder (a model or a loaded `hfapps.load("reranking", ...)`) rereads the first `rerank_depth`
        hits and orders them by its score."""
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
        if not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        single, queries = _queries(query)
        if self.properties is None:
            return [] if single else [[] for _ in queries]  # type: ignore[return-value]
        expression = milvus.expression(filter) if filter is not None else ""
        depth = max(k, rerank_depth) if rerank is not None else k
        texts = [q for q in queries if isinstance(q, str)]
        if texts and len(texts) != len(queries):
            raise InputError("Search takes texts or vectors, not both in one call.")
        if not texts and mode != "dense":
            mode = "dense"  # a vector has no words for BM25
        dense: list[list[dict[str, Any]]] = []
        sparse: list[list[dict[str, Any]]] = []
        fused_depth = max(depth, FUSION_DEPTH) if mode == "hybrid" else depth
        if mode in ("hybrid", "dense"):
            vectors = self.embedder.encode(texts, **self._prompt("query")) if texts else np.asarray(queries, np.float32)
            self._check_vectors(vectors, len(queries))
            dense = self._searches(("dense", fused_depth, expression), list(vectors))
        if mode in ("hybrid", "bm25"):
            sparse = self._searches(("bm25", fused_depth, expression), texts)
        if rerank is not None and not isinstance(rerank, Task):
            rerank = load("reranking", os.fspath(rerank))  # type: ignore[arg-type]  # once for every query, not once per query
        results = []
        for i in range(len(queries)):
            if mode == "hybrid":
                hits = _fuse(dense[i], sparse[i], weights, rrf_k)[:depth]
            else:
                hits = (dense or sparse)[i][:depth]
            if rerank is not None and texts:
                hits = _rerank(rerank, texts[i], hits)
            results.append(hits[:k])
        return results[0] if single else results

    def _search_milvus(self, key: Any, queries: list[Any]) -> list[list[dict[str, Any]]]:
        """One Milvus search for the queries of every caller that shares it (`milvus.SharedSearch`)."""
        field, limit, expression = key
        if field == "dense":
            vectors = np.asarray(queries, dtype=np.float32)
            return milvus.search_dense(self.client, self.collection, vectors, limit, expression)
        return milvus.search_bm25(self.client, self.collection, queries, limit, expression)

    # -- closing ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the index; in a folder, record its files' checksums so that later damage is reported."""
        client, self.client = getattr(self, "client", None), None
        if client is None:
            return
        with self._lock:
            client.close()
            if self.embedded:
                milvus.release(self.target)
            if self.ledger is not None and os.path.isdir(ledgers.collection_folder(self.target, self.collection)):
                self.ledger.clean = True
                self.ledger.checksums = ledgers.checksums(self.target, self.collection)
                self.ledger.write(self.target)

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Index({self.target!r}, collection={self.collection!r})"


def _queries(query: Any) -> tuple[bool, list[Any]]:
    """(one query?, the queries): a text, a list of texts, one vector or a 2-D array of them."""
    if isinstance(query, str):
        return True, [query]
    if isinstance(query, np.ndarray):
        if query.ndim == 1:
            return True, [query]
        return False, list(query)
    if isinstance(query, (list, tuple)) and query and all(isinstance(x, (int, float)) for x in query):
        return True, [np.asarray(query, dtype=np.float32)]
    if isinstance(query, (list, tuple)) and query and all(isinstance(x, (str, np.ndarray, list)) for x in query):
        return False, [q if isinstance(q, str) else np.asarray(q, np.float32) for q in query]
    raise InputError(f"A query is a text, a list of texts, or vectors; got {query!r:.80}.")


def _fuse(
    dense: list[dict[str, Any]], sparse: list[dict[str, Any]], weights: tuple[float, float], rrf_k: float
) -> list[dict[str, Any]]:
    by_id = {hit["id"]: hit for hit in [*sparse, *dense]}
    fused = reciprocal_rank_fusion([[h["id"] for h in dense], [h["id"] for h in sparse]], weights, k=rrf_k)
    return [{**by_id[key], "score": score} for key, score in fused]


def _rerank(reranker: Any, query: str, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not hits:
        return hits
    if not isinstance(reranker, Task):
        reranker = load("reranking", os.fspath(reranker))  # type: ignore[arg-type]
    scores = reranker([{"query": query, "document": hit["text"]} for hit in hits])
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [{**hits[i], "score": float(scores[i])} for i in order]


def iter_documents(rows: Iterable[dict[str, Any]], text_column: str, id_column: str) -> Iterator[dict[str, Any]]:
    """Rows of a data file as documents: their text and id columns renamed, the other columns kept as metadata."""
    for row in rows:
        document = {k: v for k, v in row.items() if k not in (text_column, id_column)}
        document["text"] = row[text_column]
        if id_column in row and row[id_column] is not None:
            document["id"] = str(row[id_column])
        yield document
