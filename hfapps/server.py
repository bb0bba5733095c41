"""`hfapps serve`: the task helpers behind a REST API (FastAPI + uvicorn), with dynamic batching and a web page.

    hfapps serve --model sentiment=distilbert/distilbert-base-uncased-finetuned-sst-2-english --port 8000

Endpoints: `POST /v1/<task>` with `{"inputs": ..., "options": {...}}` (the helper's result, same keys, same
order; `<task>` is the task's command, name or alias), `GET /v1/models`, `GET /health` (liveness), `GET /ready`
(readiness: 200 once every model is loaded), `GET /docs` (OpenAPI) and `GET /` (the web page).

Every error is JSON, `{"error": {"type", "message"}}`: 400 malformed JSON, 401 a wrong or missing API key, 404 a
task that is not loaded (listing those that are), 413 a body over the size limit, 422 input or options the task
cannot take (naming the limit or the problem), 503 a model that failed to load, or did not load within
LOAD_WAIT_SECONDS, or out of memory. The server binds to
127.0.0.1 unless told otherwise, and anywhere else only with an API key.
"""


import asyncio
import hmac
import json
import logging
import os
import threading
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any, Union

from .batching import Batcher
from .errors import HfappsError, InputError, OutOfMemoryError

logger = logging.getLogger("hfapps.serve")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Paths open without the API key: liveness (for load balancers) and the page itself (it asks for the key).
OPEN_PATHS = ("/health", "/")
CONFIG_ENV = "HFAPPS_SERVE_CONFIG"


@dataclass
class ServeConfig:
    """What `hfapps serve` was asked for; also handed to each worker process as JSON."""

    models: list[tuple[str, str]]  # (task as given, model)
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_wait_ms: float = 5.0
    max_batch_size: int = 64
    max_batch_tokens: int = 32768
    max_body_bytes: int = 1_000_000
    max_texts: int = 256
    max_chars: int = 20_000
    max_new_tokens: int = 512
    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False
    workers: int = 1
    graceful_timeout: float = 30.0  # on SIGTERM, how long requests in flight may take to finish

    def check(self) -> None:
        from .tasks import task_class

        if not self.models:
            raise InputError("Give at least one model to serve: --model TASK=MODEL (e.g. sentiment=runs/sentiment).")
        seen: dict[str, str] = {}
        for task, model in self.models:
            name = task_class(task).name
            if name in seen:
                raise InputError(f"Two models for {name}: {seen[name]!r} and {model!r}. Serve one model per task "
                                 "(run a second server for the other).")
            seen[name] = model
        from .models import resolve

        for _, model in self.models:  # a missing path or unknown id fails now, not after start-up
            resolve(model, trust_remote_code=self.trust_remote_code)
        if self.host not in LOOPBACK and not self.api_key:
            raise InputError(f"Binding to {self.host} makes the API reachable from other machines: pass --api-key "
                             "KEY (or set HFAPPS_API_KEY), or bind to 127.0.0.1.")
        for name in ("max_batch_size", "max_body_bytes", "max_texts", "max_chars", "max_new_tokens", "workers"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
        if self.max_wait_ms < 0:
            raise InputError(f"--max-wait-ms must be 0 or more, got {self.max_wait_ms}.")


class _Served:
    """One loaded task: its model, its batcher, and the variants its options ask for (zero-shot)."""

    def __init__(self, given: str, model: str, config: ServeConfig) -> None:
        from .tasks import task_class

        self.cls = task_class(given)
        self.model = model
        self.config = config
        self.task: Any = None
        self.error: str | None = None
        self.variants: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.batcher = Batcher(self._predict, max_wait_ms=config.max_wait_ms, max_batch_size=config.max_batch_size,
                               name=self.cls.name)

    @property
    def path(self) -> str:
        return f"/v1/{self.cls.command or self.cls.name}"

    def load(self) -> None:
        try:
            self.task = self._load(self.cls.name)
            self.variants[self.cls.name] = self.task
        except Exception as err:  # noqa: BLE001 - reported by /ready and /v1/models
            logger.exception("Could not load %s=%s", self.cls.name, self.model)
            self.error = f"{type(err).__name__}: {err}"

    def _load(self, name: str) -> Any:
        from .api import load

        return load(name, self.model, device=self.config.device, dtype=self.config.dtype,  # type: ignore[arg-type]
                    trust_remote_code=self.config.trust_remote_code, max_batch_tokens=self.config.max_batch_tokens,
                    progress=False)

    def _predict(self, items: list[Any], **options: Any) -> list[Any]:
        """Runs on the batcher's worker thread."""
        name = self.cls.variant(options).name
        with self._lock:
            if name not in self.variants:  # e.g. classify with labels=: the same model, as zero-shot
                self.variants[name] = self._load(name)
        return self.variants[name](items, **options)

    def describe(self) -> dict[str, Any]:
        task = self.task
        return {"task": self.cls.name, "path": self.path, "model": self.model, "ready": task is not None,
                "error": self.error,
                "device": str(task.device) if task is not None else None,
                "dtype": None if task is None else task.precision,
                "runtime": None if task is None else task.runtime}


#: How long a request waits for its model to finish loading before a 503.
LOAD_WAIT_SECONDS = 120


def _error(status: int, kind: str, message: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


class _Guard:
    """ASGI middleware: the API key on every request but OPEN_PATHS, and the body size limit."""

    def __init__(self, app: Any, api_key: str | None, max_body_bytes: int) -> None:
        self.app, self.api_key, self.limit = app, api_key, max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.api_key and scope["path"] not in OPEN_PATHS:
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                await _error(401, "Unauthorized", "A valid API key is required: send it as the X-API-Key header "
                                                  "(or Authorization: Bearer KEY).")(scope, receive, send)
                return
        if scope["method"] == "POST":  # the API speaks JSON only: a body sent as form data is read as JSON too
            scope = {**scope, "headers": [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
                     + [(b"content-type", b"application/json")]}
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            await _error(400, "BadRequest", "Content-Length is not a number.")(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _BodyTooLarge
            return message

        try:
            if length is not None and int(length) > self.limit:
                raise _BodyTooLarge
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._drain(receive)
            await _error(413, "PayloadTooLarge", f"The request body is over the limit of {self.limit} bytes "
                                                 "(--max-body-bytes): send fewer or shorter texts per request.")(
                scope, receive, send)

    async def _drain(self, receive: Any) -> None:
        """Read (and drop) the rest of an oversized body, so that the client sees the 413 rather than a broken
        connection; past 64 times the limit, stop reading and let the connection close."""
        drained = 0
        while drained < 64 * self.limit:
            message = await receive()
            drained += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                return


class _BodyTooLarge(Exception):
    pass


def _request_model(cls: Any) -> Any:
    """The typed request body of a task: its inputs, and its options (from the task's typed options)."""
    from pydantic import BaseModel, ConfigDict, create_model

    from .tasks.question_answering import QuestionAnswering

    kinds = {int: int, float: float, str: str, bool: bool, list: list[str]}
    fields: dict[str, Any] = {}
    for info in cls.option_infos():
        kind: Any = kinds[info.kind]
        fields[info.name] = (Union[kind, None] if info.optional else kind, None)
    config = ConfigDict(extra="forbid", strict=True)
    options = create_model(f"{cls.__name__}Options", __config__=config, **fields)
    if issubclass(cls, QuestionAnswering):
        pair = create_model("QuestionContext", __config__=config, question=(str, ...), context=(str, ...))
        inputs: Any = Union[pair, list[pair]]  # type: ignore[valid-type]
    else:
        inputs = Union[str, list[str]]
    return create_model(f"{cls.__name__}Request", __base__=BaseModel, __config__=ConfigDict(extra="forbid"),
                        inputs=(inputs, ...), options=(options, None))


def _validation_message(errors: list[dict]) -> str:
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {err.get('msg')}")
    return "; ".join(parts)


def create_app(config: ServeConfig) -> Any:
    """The FastAPI application serving `config.models`; models load in the background after start-up."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse
    from pydantic import ValidationError

    from .tasks import NAMES

    config.check()
    served = {entry.cls.name: entry for entry in (_Served(task, model, config) for task, model in config.models)}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for entry in served.values():
            entry.batcher.start()
        def load_all() -> None:
            for entry in served.values():
                entry.load()

        loading = asyncio.get_running_loop().run_in_executor(None, load_all)
        app.state.loading = loading
        yield
        await loading
        for entry in served.values():
            await entry.batcher.stop(timeout=config.graceful_timeout)

    app = FastAPI(title="hfapps", description="Hugging Face task helpers over HTTP.", lifespan=lifespan)
    app.add_middleware(_Guard, api_key=config.api_key, max_body_bytes=config.max_body_bytes)
    app.state.served = served

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        errors = list(err.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "MalformedJSON", "The request body is not valid JSON.")
        return _error(422, "InputError", _validation_message(errors))

    async def run(entry: _Served, body: Any) -> Any:
        if entry.task is None and entry.error is None:
            # Still loading: wait for it. With --workers, /ready answers for one process only, and a request
            # may reach another that started later.
            try:
                await asyncio.wait_for(asyncio.shield(app.state.loading), LOAD_WAIT_SECONDS)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - a failed load is reported below
                pass
        if entry.task is None:
            state = f"not loaded: {entry.error}" if entry.error else "still loading"
            return _error(503, "NotReady", f"{entry.cls.name} is {state}.")
        inputs = body.inputs
        single = not isinstance(inputs, list)
        items = [inputs] if single else list(inputs)
        items = [item.model_dump() if hasattr(item, "model_dump") else item for item in items]
        if len(items) > config.max_texts:
            return _error(422, "InputError", f"{len(items)} inputs is over the limit of {config.max_texts} per "
                                             "request (--max-texts): split them into several requests.")
        for index, item in enumerate(items):
            size = len(item) if isinstance(item, str) else sum(len(v) for v in item.values())
            if size > config.max_chars:
                return _error(422, "InputError", f"Input {index} has {size} characters, over the limit of "
                                                 f"{config.max_chars} (--max-chars).")
        options = body.options.model_dump(exclude_unset=True) if body.options is not None else {}
        for name in ("max_new_tokens", "min_new_tokens", "max_length"):
            if (options.get(name) or 0) > config.max_new_tokens:
                return _error(422, "InputError", f"{name}={options[name]} is over this server's limit of "
                                                 f"{config.max_new_tokens} tokens (--max-new-tokens).")
        try:
            from . import options as task_options

            options = task_options.check(entry.cls.variant(options).options, options, task=entry.cls.name)
            checked = [entry.task._check(item, None if single else i) for i, item in enumerate(items)]
            results = await entry.batcher.submit(checked, options)
        except OutOfMemoryError as err:
            return _error(503, "OutOfMemory", str(err))
        except HfappsError as err:
            return _error(422, type(err).__name__, str(err))
        except ValueError as err:  # a combination of options the model refuses (e.g. from `generate`)
            logger.warning("%s refused a request: %s", entry.cls.name, err)
            return _error(422, "InputError", f"The model refused these inputs or options: {err}")
        return results[0] if single else results

    request_models = {name: _request_model(entry.cls) for name, entry in served.items()}

    def route(entry: _Served) -> None:
        model = request_models[entry.cls.name]

        async def predict(body: model) -> Any:  # type: ignore[valid-type]
            return await run(entry, body)

        app.post(entry.path, summary=f"{entry.cls.name} ({entry.model})", name=entry.cls.name)(predict)

    for entry in served.values():
        route(entry)

    @app.post("/v1/{task}", include_in_schema=False)
    async def by_alias(task: str, request: Request) -> Any:
        entry = served.get(NAMES.get(task, task))
        if entry is None:
            loaded = ", ".join(e.path for e in served.values())
            return _error(404, "UnknownTask", f"No model is loaded for {task!r}; this server has {loaded}.")
        try:
            body = request_models[entry.cls.name].model_validate_json(await request.body())
        except ValidationError as err:
            return await invalid(request, RequestValidationError(err.errors()))
        return await run(entry, body)

    @app.get("/v1/models")
    async def loaded_models() -> list[dict[str, Any]]:
        return [entry.describe() for entry in served.values()]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Any:
        waiting = [e.cls.name for e in served.values() if e.task is None and e.error is None]
        failed = {e.cls.name: e.error for e in served.values() if e.error}
        if waiting or failed:
            from fastapi.responses import JSONResponse

            return JSONResponse({"ready": False, "loading": waiting, "failed": failed}, status_code=503)
        return {"ready": True}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return resources.files("hfapps").joinpath("web/index.html").read_text(encoding="utf-8")

    return app


def app_from_environment() -> Any:
    """The app factory each `--workers` process calls (the settings travel as JSON in HFAPPS_SERVE_CONFIG)."""
    settings = json.loads(os.environ[CONFIG_ENV])
    settings["models"] = [tuple(pair) for pair in settings["models"]]
    return create_app(ServeConfig(**settings))


def serve(config: ServeConfig) -> None:
    """Run the server until SIGTERM or Ctrl-C; requests in flight then finish before it exits."""
    import uvicorn

    config.check()
    common: dict[str, Any] = dict(host=config.host, port=config.port, log_level="info",
                                  timeout_graceful_shutdown=config.graceful_timeout)
    if config.workers > 1:
        os.environ[CONFIG_ENV] = json.dumps(asdict(config))
        uvicorn.run("hfapps.server:app_from_environment", factory=True, workers=config.workers, **common)
    else:
        uvicorn.run(create_app(config), **common)


def add_arguments(parser: Any) -> None:
    """`hfapps serve`'s flags."""
    defaults = ServeConfig(models=[])
    parser.add_argument("--model", action="append", default=[], metavar="TASK=MODEL", required=True,
                        help="a task and its model (a Hub id, a local or `hfapps train` folder, a GGUF file); repeat "
                             "for more tasks")
    parser.add_argument("--host", default=defaults.host, help="address to bind (anything but loopback needs --api-key)")
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--api-key", default=os.environ.get("HFAPPS_API_KEY"),
                        help="required on every request (X-API-Key header); default $HFAPPS_API_KEY")
    parser.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms,
                        help="how long a request waits for others to share its batch")
    parser.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size,
                        help="inputs gathered into one batch at most (1: no batching)")
    parser.add_argument("--max-batch-tokens", type=int, default=defaults.max_batch_tokens,
                        help="padded tokens per model batch at most")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    parser.add_argument("--max-texts", type=int, default=defaults.max_texts, help="inputs per request at most")
    parser.add_argument("--max-chars", type=int, default=defaults.max_chars, help="characters per input at most")
    parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens,
                        help="the most tokens a request may ask summarize/translate to generate")
    parser.add_argument("--workers", type=int, default=1, help="server processes (each loads its own models)")
    parser.add_argument("--graceful-timeout", type=float, default=defaults.graceful_timeout,
                        help="on SIGTERM, seconds the requests in flight may take to finish")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--trust-remote-code", action="store_true")


def config_from_arguments(args: Any) -> ServeConfig:
    pairs = []
    for given in args.model:
        task, sep, model = given.partition("=")
        if not sep or not task or not model:
            raise InputError(f"--model takes TASK=MODEL (e.g. sentiment=runs/sentiment), got {given!r}.")
        pairs.append((task.strip(), model.strip()))
    return ServeConfig(models=pairs, host=args.host, port=args.port, api_key=args.api_key,
                       max_wait_ms=args.max_wait_ms, max_batch_size=args.max_batch_size,
                       max_batch_tokens=args.max_batch_tokens, max_body_bytes=args.max_body_bytes,
                       max_texts=args.max_texts, max_chars=args.max_chars,
                       max_new_tokens=args.max_new_tokens, device=args.device, dtype=args.dtype,
                       trust_remote_code=args.trust_remote_code, workers=args.workers,
                       graceful_timeout=args.graceful_timeout)


__all__ = ["ServeConfig", "create_app", "serve"]
