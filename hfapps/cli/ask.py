"""`hfapps ask`: answer a question from an index of your documents (retrieve, rerank, read).

    hfapps ask my_index "How long can I pause a ride?" --reader distilbert/distilbert-base-cased-distilled-squad

Prints the answer, then its sources (the passage ids, and for an extractive reader the span's offsets); --json
prints the whole result. The logic is `hfapps.retrieval.ask`.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def add(sub: Any) -> None:
    parser = sub.add_parser("ask", help="answer a question from an index of your documents")
    parser.add_argument("index", help="the index folder, or a Milvus server URL (http://host:port)")
    parser.add_argument("question", help="the question")
    parser.add_argument("--reader", default=None, help="an extractive QA model or a causal chat model")
    parser.add_argument("--k", type=int, default=5, help="how many passages are read")
    parser.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    parser.add_argument("--filter", default=None, help='a Milvus expression, e.g. metadata["lang"] == "en"')
    parser.add_argument("--rerank", default=None, help="a cross-encoder that reorders the passages first")
    parser.add_argument("--collection", default="documents")
    parser.add_argument("--token", default=os.environ.get("MILVUS_TOKEN"), help="a Milvus server's token")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ..retrieval.ask import ask
    from ..retrieval.index import Index

    with Index(args.index, collection=args.collection, token=args.token) as index:
        result = ask(
            args.question,
            index=index,
            reader=args.reader,
            k=args.k,
            mode=args.mode,
            filter=args.filter,
            rerank=args.rerank,
        )
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    print(result["answer"] if result["answer"] is not None else "(no passage found)")
    if "id" in result:
        print(f"  from {result['id']} [{result['start']}:{result['end']}], score {result['score']:.3f}")
    if result.get("citations") is not None:
        print(f"  cites: {', '.join(result['citations']) or 'no passage'}")
    for source in result["sources"]:
        print(f"  source {source['id']}: {source['text'][:100]}")
    return 0
