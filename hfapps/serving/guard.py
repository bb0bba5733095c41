"""The server's front door: every error as JSON, the API key on every request but the open paths, and the body
size limit, checked before a request reaches its endpoint (ASGI middleware); and the 503 for a model not loaded."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from .config import OPEN_PATHS

#: How long a request waits for its model to finish loading before a 503.
LOAD_WAIT_SECONDS = 120


def error(status: int, kind: str, message: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


async def not_loaded(app: Any, entry: Any) -> Any:
    """None once `entry`'s model is loaded, else the 503 to answer. A model still loading is waited for, up to
    LOAD_WAIT_SECONDS: with --workers, /ready answers for one process only, and a request may reach another that
    started later."""
    if entry.task is None and entry.error is None:
        try:
            await asyncio.wait_for(asyncio.shield(app.state.loading), LOAD_WAIT_SECONDS)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - a failed load is reported below
            pass
    if entry.task is None:
        state = f"not loaded: {entry.error}" if entry.error else "still loading"
        return error(503, "NotReady", f"{entry.cls.name} is {state}.")
    return None


class Guard:
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
                await error(
                    401,
                    "Unauthorized",
                    "A valid API key is required: send it as the X-API-Key header (or Authorization: Bearer KEY).",
                )(scope, receive, send)
                return
        if scope["method"] == "POST":  # the API speaks JSON only: a body sent as form data is read as JSON too
            scope = {
                **scope,
                "headers": [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
                + [(b"content-type", b"application/json")],
            }
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            await error(400, "BadRequest", "Content-Length is not a number.")(scope, receive, send)
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
            await error(
                413,
                "PayloadTooLarge",
                f"The request body is over the limit of {self.limit} bytes "
                "(--max-body-bytes): send fewer or shorter texts per request.",
            )(scope, receive, send)

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
