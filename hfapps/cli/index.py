"""`hfapps embed` (vectors of texts to Parquet) and `hfapps index add|search|delete|info` (a searchable index).

    hfapps embed --input hfapps/sample_data/documents.jsonl --output vectors.parquet --overwrite
    hfapps index add my_index --input hfapps/sample_data/documents.jsonl
    hfapps index search my_index "how much is a monthly pass" --k 3 --mode hybrid
    hfapps index delete my_index --id company-01
    hfapps index info my_index

An index is a folder (Milvus Lite, embedded) or a Milvus server's URL (`http://127.0.0.1:19530`); the logic is
`hfapps.retrieval.index.Index`. A killed `index add` is finished by running the same command again: the batches
already committed are skipped and nothing is added twice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..data import read_file
from ..errors import DataError, HfappsError, InputError


def add(sub: Any) -> None:
    embed = sub.add_parser("embed", help="embed texts (one vector per text) into a Parquet, .npy or JSONL file")
    embed.add_argument("texts", nargs="*", help="texts to embed (or use --input)")
    embed.add_argument("--input", help="a .jsonl, .json, .csv, .tsv, .parquet or .txt file (one text per line)")
    embed.add_argument(
        "--output", help="a .parquet (id, text, vector), .npy (the matrix) or .jsonl file; default: print"
    )
    embed.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    embed.add_argument("--text-column", default="text", help="column holding the text in --input")
    embed.add_argument("--id-column", default="id", help="column holding an id in --input, copied to the output")
    embed.add_argument("--model", help="a sentence-transformers model or encoder: Hub id or folder (default: MiniLM)")
    embed.add_argument("--prompt-name", default=None, help="one of the model's prompts (query, document)")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best there is)")
    embed.set_defaults(run=run_embed)

    index = sub.add_parser("index", help="build and search an index of your documents (Milvus Lite or a server)")
    actions = index.add_subparsers(dest="action", required=True)
    adding = actions.add_parser("add", help="add or update documents ({id, text, ...metadata} rows)")
    _target(adding)
    adding.add_argument("--input", required=True, help="a .jsonl, .json, .csv, .tsv, .parquet or .txt file")
    adding.add_argument("--text-column", default="text", help="column holding the text")
    adding.add_argument("--id-column", default="id", help="column holding the id (default: a hash of the text)")
    adding.add_argument("--model", help="the embedding model of a new index (default: all-MiniLM-L6-v2)")
    adding.add_argument("--batch-size", type=int, default=256, help="documents per committed batch")
    adding.add_argument("--device", default=None)
    adding.set_defaults(run=run_add)

    search = actions.add_parser("search", help="search an index by text (printed as JSON lines, best first)")
    _target(search)
    search.add_argument("query", nargs="+", help="one or more queries")
    search.add_argument("--k", type=int, default=10, help="how many hits per query")
    search.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    search.add_argument("--filter", default=None, help='a Milvus expression, e.g. metadata["lang"] == "en"')
    search.add_argument("--rerank", default=None, help="a cross-encoder that reorders the first hits")
    search.add_argument("--weights", default="1,1", help="dense and BM25 weights of the hybrid fusion")
    search.add_argument("--device", default=None)
    search.set_defaults(run=run_search)

    delete = actions.add_parser("delete", help="delete documents by id or by filter")
    _target(delete)
    delete.add_argument("--id", action="append", dest="ids", help="an id to delete (repeatable)")
    delete.add_argument("--filter", default=None, help='a Milvus expression, e.g. metadata["source"] == "old.pdf"')
    delete.set_defaults(run=run_delete)

    info = actions.add_parser("info", help="what an index holds: documents, model, dimension")
    _target(info)
    info.set_defaults(run=run_info)


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", help="the index folder, or a Milvus server URL (http://host:port)")
    parser.add_argument("--collection", default="documents", help="the collection in the folder or server")
    parser.add_argument("--token", default=os.environ.get("MILVUS_TOKEN"), help="a Milvus server's token")


def _open(args: argparse.Namespace, **kwargs: Any):
    from ..retrieval.index import Index

    return Index(args.index, collection=args.collection, token=args.token, **kwargs)


def _rows(path: str, text_column: str) -> list[dict[str, Any]]:
    data = read_file(path, text_column=text_column, as_strings=True)
    if text_column not in data.column_names:
        raise DataError(
            f"{path!r} has no column {text_column!r}; its columns are {data.column_names}. Name it with --text-column."
        )
    return data.to_list()


def run_embed(args: argparse.Namespace, argv: list[str]) -> int:
    from ..api import load
    from ..tasks.embedding import Embedding

    if args.input:
        rows = _rows(args.input, args.text_column)
    elif args.texts:
        rows = [{args.text_column: text} for text in args.texts]
    else:
        raise InputError("Give texts to embed, or --input FILE.")
    if args.output and os.path.exists(args.output) and not args.overwrite:
        raise HfappsError(f"{args.output} already exists; pass --overwrite to replace it.")
    embedder = load("embedding", args.model, device=args.device, progress=bool(args.output))  # type: ignore[arg-type]
    assert isinstance(embedder, Embedding)
    options = {"prompt_name": args.prompt_name} if args.prompt_name else {}
    vectors = embedder.encode([row[args.text_column] for row in rows], batch_size=args.batch_size, **options)
    ids = [row.get(args.id_column) for row in rows]
    if args.output and args.output.endswith(".npy"):
        import numpy as np

        np.save(args.output, vectors)
    elif args.output and args.output.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, Any] = {}
        if any(i is not None for i in ids):
            columns["id"] = pa.array([None if i is None else str(i) for i in ids], pa.string())
        columns["text"] = pa.array([row[args.text_column] for row in rows], pa.string())
        columns["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
        table = pa.table(columns).replace_schema_metadata(
            {"hfapps.model": embedder.ref.name, "hfapps.model_fingerprint": embedder.fingerprint}
        )
        pq.write_table(table, args.output)
    else:
        handle = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
        try:
            for row, vector in zip(rows, vectors):
                handle.write(json.dumps({**row, "vector": [round(float(x), 7) for x in vector]}) + "\n")
        finally:
            if handle is not sys.stdout:
                handle.close()
    if args.output:
        print(f"Wrote {len(rows)} vectors of {vectors.shape[1]} dimensions to {args.output}", file=sys.stderr)
    return 0


def run_add(args: argparse.Namespace, argv: list[str]) -> int:
    from ..retrieval.index import iter_documents

    rows = _rows(args.input, args.text_column)
    with _open(args, model=args.model, device=args.device) as index:
        before = index.count()
        written = index.add(iter_documents(rows, args.text_column, args.id_column), batch_size=args.batch_size)
        after = index.count()
    skipped = len(rows) - written
    print(
        f"Indexed {written} documents in {args.index} ({after - before:+d} new, {after} in all"
        + (f"; {skipped} already committed by an earlier run" if skipped else "")
        + ")",
        file=sys.stderr,
    )
    return 0


def run_search(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        weights = tuple(float(w) for w in args.weights.split(","))
    except ValueError:
        weights = ()
    if len(weights) != 2:
        raise InputError(f"--weights takes two numbers, dense and BM25 (e.g. 1,1), got {args.weights!r}.")
    with _open(args, device=args.device) as index:
        results = index.search(
            list(args.query), k=args.k, mode=args.mode, filter=args.filter, rerank=args.rerank, weights=weights
        )
    for query, hits in zip(args.query, results):
        for rank, hit in enumerate(hits, start=1):
            print(json.dumps({"query": query, "rank": rank, **hit}, ensure_ascii=False))
    return 0


def run_delete(args: argparse.Namespace, argv: list[str]) -> int:
    if not args.ids and not args.filter:
        raise InputError("index delete needs --id ID (repeatable) or --filter EXPRESSION.")
    with _open(args) as index:
        deleted = index.delete(args.ids, filter=args.filter) if args.ids else index.delete(filter=args.filter)
        left = index.count()
    print(f"Deleted {deleted} documents from {args.index} ({left} left)", file=sys.stderr)
    return 0


def run_info(args: argparse.Namespace, argv: list[str]) -> int:
    with _open(args) as index:
        print(json.dumps(index.info(), indent=2))
    return 0
