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

# No `from __future__ import annotations` here: FastAPI reads each endpoint's body type from its signature, and
# those types are made per task at run time (`_request_model`).
import asyncio
import json
import logging
import os
import threading
from contextlib import asynccontextmanager, nullcontext
from dataclasses import asdict
from importlib import resources
from typing import Any, Union

from ..api import load
from ..errors import HfappsError, OutOfMemoryError
from ..tasks import NAMES, call_options, task_class
from .batcher import Batcher
from .config import CONFIG_ENV, ServeConfig
from .continuous import ContinuousBatcher
from .guard import Guard, error, not_loaded
from .openai import add_openai_routes
from .retrieval import add_routes as add_retrieval_routes

logger = logging.getLogger("hfapps.serve")


class _Served:
    """One loaded task: its model, its batcher (and, for a language model, its continuous batching), and the
    variants its options ask for (zero-shot)."""

    def __init__(self, given: str, model: str, config: ServeConfig) -> None:
        self.cls = task_class(given)
        self.model = model
        self.config = config
        self.task: Any = None
        self.error: str | None = None
        self.variants: dict[str, Any] = {}
        self.continuous: ContinuousBatcher | None = None
        self._lock = threading.Lock()
        self.batcher = Batcher(
            self._predict, max_wait_ms=config.max_wait_ms, max_batch_size=config.max_batch_size, name=self.cls.name
        )

    @property
    def path(self) -> str:
        return f"/v1/{self.cls.command or self.cls.name}"

    def load(self) -> None:
        try:
            task = self._load(self.cls.name)
            self.variants[self.cls.name] = task
            self._start_continuous(task)
            self.task = task  # ready only now: requests may come in from here on
        except Exception as err:  # noqa: BLE001 - reported by /ready and /v1/models
            logger.exception("Could not load %s=%s", self.cls.name, self.model)
            self.error = f"{type(err).__name__}: {err}"

    def _start_continuous(self, task: Any) -> None:
        if not self.config.continuous_batching or self.cls.name not in ("chat", "text-generation"):
            return
        if (why_not := ContinuousBatcher.supports(task)) is not None:
            logger.info("%s decodes in dynamic batches, not continuously: %s.", self.cls.name, why_not)
            return
        config = self.config
        try:
            continuous = ContinuousBatcher(
                task,
                num_blocks=config.cb_num_blocks,
                page_size=config.cb_page_size,
                max_batch_tokens=config.cb_max_batch_tokens,
                max_requests=config.cb_max_requests,
            )
            continuous.start()
        except Exception:  # noqa: BLE001 - the model still serves, through the dynamic batcher
            logger.exception("%s could not start continuous batching; it decodes in dynamic batches.", self.cls.name)
            return
        self.continuous = continuous
        logger.info(
            "%s decodes with continuous batching: %d requests per step at most, a KV cache of %d tokens.",
            self.cls.name,
            config.cb_max_requests,
            self.continuous.capacity,
        )

    async def generate(self, prompts: list[Any], options: dict[str, Any]) -> list[Any]:
        """The results for checked language-model prompts: in the running batch where it can take them, else
        through the dynamic batcher."""
        if self.continuous is not None and self.continuous.accepts(prompts, options):
            return list(await asyncio.gather(*(self.continuous.submit(p, options) for p in prompts)))
        return await self.batcher.submit(prompts, options)

    def leave(self, prompt: Any) -> None:
        """A streaming client went away: stop decoding for it (a continuous batch frees its slot now)."""
        prompt.cancelled.set()
        if self.continuous is not None:
            self.continuous.cancel_prompt(prompt)

    def stop_continuous(self) -> None:
        if self.continuous is not None:
            self.continuous.stop(timeout=self.config.graceful_timeout)

    def _load(self, name: str) -> Any:
        task: Any = name  # any registered name, not only the helpers' literal ones
        return load(
            task,
            self.model,
            device=self.config.device,
            dtype=self.config.dtype,
            trust_remote_code=self.config.trust_remote_code,
            max_batch_tokens=self.config.max_batch_tokens,
            progress=False,
        )

    def _predict(self, items: list[Any], **options: Any) -> list[Any]:
        """Runs on the batcher's worker thread."""
        name = self.cls.variant(options).name
        with self._lock:
            if name not in self.variants:  # e.g. classify with labels=: the same model, as zero-shot
                self.variants[name] = self._load(name)
        # The running batch holds still while a dynamic batch uses the same weights.
        with self.continuous.paused() if self.continuous is not None else nullcontext():
            return self.variants[name](items, **options)

    def describe(self) -> dict[str, Any]:
        task = self.task
        return {
            "task": self.cls.name,
            "path": self.path,
            "model": self.model,
            "ready": task is not None,
            "error": self.error,
            "device": str(task.device) if task is not None else None,
            "dtype": None if task is None else task.precision,
            "runtime": None if task is None else task.runtime,
            "continuous_batching": None if self.continuous is None else self.continuous.describe(),
        }


def _request_model(cls: Any) -> Any:
    """The typed request body of a task: its inputs, and its options (from the task's typed options)."""
    from pydantic import BaseModel, ConfigDict, create_model

    kinds = {int: int, float: float, str: str, bool: bool, list: list[str]}
    fields: dict[str, Any] = {}
    for info in cls.option_infos():
        kind: Any = kinds[info.kind]
        fields[info.name] = (Union[kind, None] if info.optional else kind, None)
    config = ConfigDict(extra="forbid", strict=True)
    options = create_model(f"{cls.__name__}Options", __config__=config, **fields)
    if cls.input_fields:  # e.g. question answering: {"question", "context"}
        fields_ = dict.fromkeys(cls.input_fields, (str, ...))
        item = create_model(f"{cls.__name__}Input", __config__=config, **fields_)
        inputs: Any = Union[item, list[item]]  # type: ignore[valid-type]
    else:
        inputs = Union[str, list[str]]
    return create_model(
        f"{cls.__name__}Request",
        __base__=BaseModel,
        __config__=ConfigDict(extra="forbid"),
        inputs=(inputs, ...),
        options=(options, None),
    )


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

    config.check()
    served = {entry.cls.name: entry for entry in (_Served(task, model, config) for task, model in config.models)}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if config.threads:
            import torch

            torch.set_num_threads(config.threads)
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
            await asyncio.get_running_loop().run_in_executor(None, entry.stop_continuous)

    app = FastAPI(title="hfapps", description="Hugging Face task helpers over HTTP.", lifespan=lifespan)
    app.add_middleware(Guard, api_key=config.api_key, max_body_bytes=config.max_body_bytes)
    app.state.served = served

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        errors = list(err.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error(400, "MalformedJSON", "The request body is not valid JSON.")
        return error(422, "InputError", _validation_message(errors))

    async def run(entry: _Served, body: Any) -> Any:
        if refused := await not_loaded(app, entry):
            return refused
        inputs = body.inputs
        single = not isinstance(inputs, list)
        items = [inputs] if single else list(inputs)
        items = [item.model_dump() if hasattr(item, "model_dump") else item for item in items]
        if len(items) > config.max_texts:
            return error(
                422,
                "InputError",
                f"{len(items)} inputs is over the limit of {config.max_texts} per "
                "request (--max-texts): split them into several requests.",
            )
        for index, item in enumerate(items):
            size = len(item) if isinstance(item, str) else sum(len(v) for v in item.values())
            if size > config.max_chars:
                return error(
                    422,
                    "InputError",
                    f"Input {index} has {size} characters, over the limit of {config.max_chars} (--max-chars).",
                )
        options = body.options.model_dump(exclude_unset=True) if body.options is not None else {}
        for name in ("max_new_tokens", "min_new_tokens", "max_length"):
            if (options.get(name) or 0) > config.max_new_tokens:
                return error(
                    422,
                    "InputError",
                    f"{name}={options[name]} is over this server's limit of "
                    f"{config.max_new_tokens} tokens (--max-new-tokens).",
                )
        try:
            options = call_options.check(entry.cls.variant(options).options, options, task=entry.cls.name)
            checked = [entry.task._check(item, None if single else i) for i, item in enumerate(items)]
            results = await entry.batcher.submit(checked, options)
        except OutOfMemoryError as err:
            return error(503, "OutOfMemory", str(err))
        except HfappsError as err:
            return error(422, type(err).__name__, str(err))
        except ValueError as err:  # a combination of options the model refuses (e.g. from `generate`)
            logger.warning("%s refused a request: %s", entry.cls.name, err)
            return error(422, "InputError", f"The model refused these inputs or options: {err}")
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
            return error(404, "UnknownTask", f"No model is loaded for {task!r}; this server has {loaded}.")
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
        return resources.files("hfapps.serving").joinpath("web/index.html").read_text(encoding="utf-8")

    add_openai_routes(app, config)
    add_retrieval_routes(app, served, config, dict(config.indexes))
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
    common: dict[str, Any] = dict(
        host=config.host, port=config.port, log_level="info", timeout_graceful_shutdown=config.graceful_timeout
    )
    if config.workers > 1:
        os.environ[CONFIG_ENV] = json.dumps(asdict(config))
        uvicorn.run("hfapps.serving.app:app_from_environment", factory=True, workers=config.workers, **common)
    else:
        uvicorn.run(create_app(config), **common)


__all__ = ["ServeConfig", "create_app", "serve"]
