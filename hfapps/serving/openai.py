"""OpenAI-compatible routes for `hfapps serve`: `POST /v1/chat/completions`, `POST /v1/completions` and the list
shape of `GET /v1/models`, so that the official `openai` client (and whatever speaks its API) talks to hfapps.

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="KEY or anything")
    client.chat.completions.create(model="chat", messages=[...], stream=True)

They run on the served `chat` and `text-generation` models with continuous batching (hfapps/serving/continuous.py:
a request that arrives while others decode joins their batch at its next step), or, for what that cannot take
(sampling, a JSON schema, a CTranslate2 export, `--continuous-batching false`), through the same dynamic batcher as
`/v1/<task>` (streams that arrive together decode in one batch, each row streaming its own text); with the same API
key, body limit, `--max-new-tokens` and `--max-chars` limits, and the same `{"error": {"type", "message"}}`
errors. A stream is server-sent events (`data: {chunk}`, ending with `data: [DONE]`); a client that disconnects
mid-stream frees its row of the batch at the next token. `stop`, `max_tokens` (or `max_completion_tokens`),
`temperature`, `top_p`, `seed`, `response_format` (a JSON schema) and `stream_options.include_usage` are honoured;
hfapps' `top_k` and `repetition_penalty` may be sent as extra fields.
"""

# No `from __future__ import annotations`: pydantic reads the request models' field types at run time.
import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ..errors import HfappsError, OutOfMemoryError
from ..tasks import call_options
from ..tasks.generation import Prompt, response_schema
from .config import ServeConfig
from .guard import error, not_loaded

logger = logging.getLogger("hfapps.serve")


def _request_models() -> tuple[Any, Any]:
    from pydantic import BaseModel, ConfigDict

    class Sampling(BaseModel):
        model_config = ConfigDict(extra="ignore")  # fields hfapps does not use (user, logprobs, ...) are ignored
        model: str | None = None
        max_tokens: int | None = None
        max_completion_tokens: int | None = None
        temperature: float | None = None
        top_p: float | None = None
        top_k: int | None = None
        seed: int | None = None
        repetition_penalty: float | None = None
        stop: str | list[str] | None = None
        stream: bool = False
        stream_options: dict[str, Any] | None = None
        response_format: dict[str, Any] | None = None
        n: int = 1

    class ChatRequest(Sampling):
        messages: list[dict[str, Any]]

    class CompletionRequest(Sampling):
        prompt: str | list[str]

    return ChatRequest, CompletionRequest


def models_list(served: dict[str, Any]) -> dict[str, Any]:
    """`GET /v1/models` in OpenAI's list shape, each entry keeping hfapps' own fields (task, path, ready, ...)."""
    return {
        "object": "list",
        "data": [
            {"id": entry.model, "object": "model", "created": 0, "owned_by": "hfapps", **entry.describe()}
            for entry in served.values()
        ],
    }


def add_openai_routes(app: Any, config: ServeConfig) -> None:
    """Add the OpenAI routes to the app `create_app` made (ahead of its `/v1/{task}` route, which would otherwise
    take `/v1/completions` for a task's name)."""
    from fastapi import Request
    from fastapi.responses import StreamingResponse
    from pydantic import ValidationError

    chat_model, completion_model = _request_models()
    served: dict[str, Any] = app.state.served
    before = len(app.router.routes)

    async def parse(request: Request, model: Any) -> Any:
        try:
            return model.model_validate_json(await request.body())
        except ValidationError as err:
            if any(e.get("type") == "json_invalid" for e in err.errors()):
                return error(400, "MalformedJSON", "The request body is not valid JSON.")
            where = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg')}" for e in err.errors()[:5]
            )
            return error(422, "InputError", where)

    async def ready(task: str, route: str) -> Any:
        entry = served.get(task)
        if entry is None:
            loaded = ", ".join(f"{e.cls.name}" for e in served.values())
            return None, error(
                404,
                "UnknownTask",
                f"{route} needs a {task} model (hfapps serve --model {task}=MODEL); this server has {loaded}.",
            )
        if refused := await not_loaded(app, entry):
            return None, refused
        return entry, None

    def options_of(body: Any) -> dict[str, Any]:
        stop = [body.stop] if isinstance(body.stop, str) else body.stop
        options = {
            "max_new_tokens": body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens,
            "temperature": body.temperature,
            "top_p": body.top_p,
            "top_k": body.top_k,
            "seed": body.seed,
            "repetition_penalty": body.repetition_penalty,
            "stop": stop or None,
            "json_schema": response_schema(body.response_format) if body.response_format is not None else None,
        }
        return {k: v for k, v in options.items() if v is not None}

    async def answer(task: str, route: str, body: Any, inputs: list[Any]) -> Any:
        """Check and queue one request's prompts; the results, or the prompts and their job for a stream."""
        entry, failure = await ready(task, route)
        if failure is not None:
            return failure
        if body.n != 1:
            return error(422, "InputError", f"n={body.n}: this server writes one choice per prompt (n=1).")
        if len(inputs) > config.max_texts:
            return error(
                422, "InputError", f"{len(inputs)} prompts is over the limit of {config.max_texts} (--max-texts)."
            )
        try:
            options = options_of(body)
            if options.get("max_new_tokens", 0) > config.max_new_tokens:
                return error(
                    422,
                    "InputError",
                    f"max_tokens={options['max_new_tokens']} is over this server's limit of {config.max_new_tokens} "
                    "tokens (--max-new-tokens).",
                )
            options = call_options.check(entry.cls.options, options, task=entry.cls.name)
            prompts = [entry.task._check(item, None if len(inputs) == 1 else i) for i, item in enumerate(inputs)]
            for index, prompt in enumerate(prompts):
                if len(prompt.text) > config.max_chars:
                    return error(
                        422,
                        "InputError",
                        f"Prompt {index} has {len(prompt.text)} characters, over the limit of {config.max_chars} "
                        "(--max-chars).",
                    )
            entry.task.prepare(prompts, options)
        except HfappsError as err:
            return error(422, type(err).__name__, str(err))
        if body.stream:
            if len(prompts) != 1:
                return error(422, "InputError", "stream=true takes one prompt; send one request per prompt.")
            return _stream(entry, prompts[0], options, body, chat=task == "chat")
        try:
            results = await entry.generate(prompts, options)
        except OutOfMemoryError as err:
            return error(503, "OutOfMemory", str(err))
        except HfappsError as err:
            return error(422, type(err).__name__, str(err))
        return _completion(results, entry.model, body, chat=task == "chat")

    def _stream(entry: Any, prompt: Prompt, options: dict[str, Any], body: Any, *, chat: bool) -> Any:
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[Any] = asyncio.Queue()

        def on_delta(text: str) -> None:
            loop.call_soon_threadsafe(deltas.put_nowait, text)

        prompt.on_delta = on_delta
        job = asyncio.ensure_future(entry.generate([prompt], options))
        job.add_done_callback(lambda _: deltas.put_nowait(None))
        job.add_done_callback(_report_cancelled)
        ident, created = _ident(chat), int(time.time())
        usage = bool((body.stream_options or {}).get("include_usage"))

        def chunk(choice: dict[str, Any] | None, **extra: Any) -> str:
            kind = "chat.completion.chunk" if chat else "text_completion"
            payload = {"id": ident, "object": kind, "created": created, "model": entry.model}
            payload["choices"] = [] if choice is None else [{"index": 0, "logprobs": None, **choice}]
            return f"data: {json.dumps({**payload, **extra})}\n\n"

        def piece(text: str) -> dict[str, Any]:
            return {"delta": {"content": text}} if chat else {"text": text}

        async def events() -> AsyncIterator[str]:
            try:
                if chat:
                    yield chunk({"delta": {"role": "assistant", "content": ""}, "finish_reason": None})
                while (text := await deltas.get()) is not None:
                    yield chunk({**piece(text), "finish_reason": None})
                try:
                    result = job.result()[0]
                except HfappsError as err:
                    kind = "OutOfMemory" if isinstance(err, OutOfMemoryError) else type(err).__name__
                    yield f"data: {json.dumps({'error': {'type': kind, 'message': str(err)}})}\n\n"
                    return
                final: dict[str, Any] = {"delta": {}} if chat else {"text": ""}
                yield chunk({**final, "finish_reason": result["finish_reason"]})
                if usage:
                    yield chunk(None, usage=result["usage"])
                yield "data: [DONE]\n\n"
            finally:  # the client went away (or the stream ended): stop decoding for it
                entry.leave(prompt)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/v1/chat/completions", summary="OpenAI-compatible chat completions (stream: server-sent events)")
    async def chat_completions(request: Request) -> Any:
        body = await parse(request, chat_model)
        if not isinstance(body, chat_model):
            return body
        return await answer("chat", "/v1/chat/completions", body, [body.messages])

    @app.post("/v1/completions", summary="OpenAI-compatible text completions (stream: server-sent events)")
    async def completions(request: Request) -> Any:
        body = await parse(request, completion_model)
        if not isinstance(body, completion_model):
            return body
        prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
        return await answer("text-generation", "/v1/completions", body, prompts)

    @app.get("/v1/models", summary="The served models, in OpenAI's list shape")
    async def listed() -> dict[str, Any]:
        return models_list(served)

    # Ahead of the routes create_app added: its `/v1/{task}` would take `/v1/completions`, its `/v1/models` the list.
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[:0] = added


def _report_cancelled(job: "asyncio.Future[Any]") -> None:
    if job.cancelled() or job.exception() is not None:
        return
    result = job.result()[0]
    if result["finish_reason"] == "cancelled":
        logger.warning(
            "A client left mid-stream: its row stopped after %d tokens.", result["usage"]["completion_tokens"]
        )


def _ident(chat: bool) -> str:
    return f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"


def _completion(results: list[dict[str, Any]], model: str, body: Any, *, chat: bool) -> dict[str, Any]:
    choices = []
    for index, result in enumerate(results):
        choice: dict[str, Any] = {"index": index, "finish_reason": result["finish_reason"], "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": result["content"]}
        else:
            choice["text"] = result["generated_text"]
        choices.append(choice)
    prompt_tokens = sum(r["usage"]["prompt_tokens"] for r in results)
    completion_tokens = sum(r["usage"]["completion_tokens"] for r in results)
    return {
        "id": _ident(chat),
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
