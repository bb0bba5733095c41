"""`hfapps serve --model TASK=MODEL ...`: its flags, read into a `ServeConfig` (the server is `hfapps.serving`).

hfapps serve --model sentiment=runs/sentiment --port 8000
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InputError
from ..serving.app import serve
from ..serving.config import ServeConfig


def add(sub: Any) -> None:
    parser = sub.add_parser("serve", help="serve models over HTTP: a REST API and a web page")
    defaults = ServeConfig(models=[])
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="TASK=MODEL",
        required=True,
        help="a task and its model (a Hub id, a local or `hfapps train` folder, a GGUF file); repeat for more tasks",
    )
    parser.add_argument(
        "--index",
        action="append",
        default=[],
        metavar="NAME=INDEX",
        help="an index to search and answer from (a folder `hfapps index add` wrote, or a Milvus server's URL), "
        "at /v1/indexes/NAME/search and /v1/ask; repeat for more",
    )
    parser.add_argument("--host", default=defaults.host, help="address to bind (anything but loopback needs --api-key)")
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("HFAPPS_API_KEY"),
        help="required on every request (X-API-Key header); default $HFAPPS_API_KEY",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help="how long a request waits for others to share its batch",
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=defaults.max_batch_size,
        help="inputs gathered into one batch at most (1: no batching)",
    )
    parser.add_argument(
        "--max-batch-tokens", type=int, default=defaults.max_batch_tokens, help="padded tokens per model batch at most"
    )
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    parser.add_argument("--max-texts", type=int, default=defaults.max_texts, help="inputs per request at most")
    parser.add_argument("--max-chars", type=int, default=defaults.max_chars, help="characters per input at most")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=defaults.max_new_tokens,
        help="the most tokens a request may ask summarize/translate to generate",
    )
    parser.add_argument(
        "--continuous-batching",
        type=true_or_false,
        default=defaults.continuous_batching,
        metavar="true|false",
        help="chat and text-generation requests join the batch that decodes, at its next step (default true)",
    )
    parser.add_argument(
        "--cb-num-blocks",
        type=int,
        default=defaults.cb_num_blocks,
        help="continuous batching: KV-cache pages for all requests together",
    )
    parser.add_argument(
        "--cb-page-size", type=int, default=defaults.cb_page_size, help="continuous batching: tokens per KV-cache page"
    )
    parser.add_argument(
        "--cb-max-batch-tokens",
        type=int,
        default=defaults.cb_max_batch_tokens,
        help="continuous batching: tokens per decoding step at most (prompts are read in chunks of it)",
    )
    parser.add_argument(
        "--cb-max-requests",
        type=int,
        default=defaults.cb_max_requests,
        help="continuous batching: requests decoding together at most (more wait for a free slot)",
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (each loads its own models)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per server process (default: one per core; on cores that other work keeps busy, 1 "
        "decodes several times faster than 2, whose threads wait on each other)",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=float,
        default=defaults.graceful_timeout,
        help="on SIGTERM, seconds the requests in flight may take to finish",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.set_defaults(run=run)


def true_or_false(given: str) -> bool:
    value = given.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise InputError(f"Expected true or false, got {given!r}.")


def run(args: Any, argv: list[str]) -> int:
    serve(config_from_arguments(args))
    return 0


def config_from_arguments(args: Any) -> ServeConfig:
    pairs = []
    for given in args.model:
        task, sep, model = given.partition("=")
        if not sep or not task or not model:
            raise InputError(f"--model takes TASK=MODEL (e.g. sentiment=runs/sentiment), got {given!r}.")
        pairs.append((task.strip(), model.strip()))
    indexes = []
    for given in args.index:
        name, sep, where = given.partition("=")
        if not sep or not name or not where:
            raise InputError(f"--index takes NAME=INDEX (e.g. docs=runs/docs-index), got {given!r}.")
        indexes.append((name.strip(), where.strip()))
    return ServeConfig(
        models=pairs,
        indexes=indexes,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        max_wait_ms=args.max_wait_ms,
        max_batch_size=args.max_batch_size,
        max_batch_tokens=args.max_batch_tokens,
        max_body_bytes=args.max_body_bytes,
        max_texts=args.max_texts,
        max_chars=args.max_chars,
        max_new_tokens=args.max_new_tokens,
        device=args.device,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
        workers=args.workers,
        threads=args.threads,
        graceful_timeout=args.graceful_timeout,
        continuous_batching=args.continuous_batching,
        cb_num_blocks=args.cb_num_blocks,
        cb_page_size=args.cb_page_size,
        cb_max_batch_tokens=args.cb_max_batch_tokens,
        cb_max_requests=args.cb_max_requests,
    )
