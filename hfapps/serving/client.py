"""`hfapps.Client`: the helpers, over HTTP, against an `hfapps serve` server.

    client = hfapps.Client("http://127.0.0.1:8000")
    client.sentiment(["I loved it", "I did not"])      # the same result as hfapps.sentiment(...)

A string gives one result, a list a list in input order, any other iterable a lazy stream (sent in requests of
`chunk_size` inputs). Errors come back as the same hfapps exceptions the local helpers raise (`InputError`,
`UnsupportedLanguageError`, `OutOfMemoryError`, ...); anything else is a `ServerError` with the HTTP status.
Only the standard library is used, so a client machine needs nothing but hfapps itself.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

from .. import errors
from ..inference.inputs import chunked


class Client:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 300,
        chunk_size: int = 32,
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("HFAPPS_API_KEY")
        self.timeout = timeout
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- the helpers ---------------------------------------------------------------------------------

    def sentiment(self, texts: str | Iterable[str], **options: Any) -> Any:
        return self._call("sentiment", texts, options)

    def classify(self, texts: str | Iterable[str], **options: Any) -> Any:
        return self._call("classify", texts, options)

    def summarize(self, texts: str | Iterable[str], **options: Any) -> Any:
        return self._call("summarize", texts, options)

    def translate(self, texts: str | Iterable[str], **options: Any) -> Any:
        return self._call("translate", texts, options)

    def answer(
        self,
        question: str | list[str] | None = None,
        context: str | list[str] | None = None,
        *,
        inputs: Iterable[dict[str, str]] | None = None,
        **options: Any,
    ) -> Any:
        if inputs is None:
            from ..tasks.question_answering import pair_up

            inputs = pair_up(question, context)
        return self._call("answer", inputs, options)

    # -- the server ----------------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        """What the server has loaded: task, path, model, device, dtype, runtime, ready (the entries of OpenAI's
        list shape that `GET /v1/models` answers with)."""
        return self._request("GET", "/v1/models")["data"]

    def health(self) -> bool:
        try:
            return self._request("GET", "/health").get("status") == "ok"
        except errors.ServerError:
            return False

    def ready(self) -> bool:
        try:
            return bool(self._request("GET", "/ready").get("ready"))
        except errors.ServerError:
            return False

    # -- plumbing ------------------------------------------------------------------------------------

    def _call(self, task: str, inputs: Any, options: dict[str, Any]) -> Any:
        given = {k: v for k, v in options.items() if v is not None}
        if isinstance(inputs, (str, dict, list)):
            return self._request("POST", f"/v1/{task}", {"inputs": inputs, "options": given})
        if not isinstance(inputs, Iterable):
            raise errors.InputError(f"{task} takes a string, a list or an iterable, got {type(inputs).__name__}.")
        return self._stream(task, inputs, given)

    def _stream(self, task: str, inputs: Iterable[Any], options: dict[str, Any]) -> Iterator[Any]:
        for chunk in chunked(inputs, self.chunk_size):
            yield from self._request("POST", f"/v1/{task}", {"inputs": chunk, "options": options})

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("X-API-Key", self.api_key)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise _error_from(err) from None
        except urllib.error.URLError as err:
            raise errors.ServerError(
                f"Could not reach the hfapps server at {self.url}: {err.reason}. Is `hfapps serve` running there?"
            ) from err


def _error_from(err: urllib.error.HTTPError) -> errors.HfappsError:
    try:
        detail = json.loads(err.read()).get("error", {})
        kind, message = detail.get("type", ""), detail.get("message", "")
    except (ValueError, AttributeError):
        kind, message = "", err.reason
    known = {
        "InputError": errors.InputError,
        "UnsupportedLanguageError": errors.UnsupportedLanguageError,
        "TaskMismatchError": errors.TaskMismatchError,
        "OutOfMemory": errors.OutOfMemoryError,
        "ModelLoadError": errors.ModelLoadError,
    }
    if kind in known:
        return known[kind](message)
    return errors.ServerError(f"The server answered {err.code}: {message or err.reason}", status=err.code)
