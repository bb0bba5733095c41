"""Decoding pieces every causal language model task shares, around transformers' `generate`.

- `Row`: one sequence of a batch as it decodes: its tokens so far, the text it may show, why it finished.
- `RowStreamer`: a transformers streamer for a whole batch. After each step it decodes every row, holds back text
  that could be the start of a stop string (so a stop string is never shown, even when it arrives split across
  tokens) and hands each row's new text to its `on_delta`, as it is decoded.
- `RowsDone`: a `StoppingCriteria` that ends a row when its streamer says so: a stop string, its own token limit,
  or its caller gone (a cancelled stream frees its row at once).
- `sampling`: hfapps' sampling options as `generate` arguments (temperature 0 or none: greedy).
- `JsonSchemaProcessor`: a `LogitsProcessor` that keeps each row inside a JSON schema, through llguidance.
- `TextStream`: the iterator of text deltas that `stream=True` returns, decoded on a thread of its own.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from ..errors import HfappsError, InputError

#: finish_reason values, as OpenAI's API names them ("cancelled": the caller stopped reading).
STOP, LENGTH, CANCELLED = "stop", "length", "cancelled"


@dataclass
class Row:
    """One prompt being decoded."""

    prompt_tokens: int
    max_new_tokens: int
    stops: Sequence[str] = ()
    #: Called with each piece of new text, on the thread that runs `generate`.
    on_delta: Callable[[str], None] | None = None
    #: Set by another thread to stop decoding this row (a client that went away).
    cancelled: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)
    text: str = ""  # what has been shown (or would be): never a stop string, nor the start of one
    finish_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": len(self.ids),
            "total_tokens": self.prompt_tokens + len(self.ids),
        }


def shown_length(text: str, stops: Sequence[str]) -> tuple[int, bool]:
    """How much of `text` may be shown, and whether a stop string was found: the text before the first stop
    string; else all of it but a tail that is the start of a stop string (or an incomplete character)."""
    found = [i for i in (text.find(stop) for stop in stops if stop) if i >= 0]
    if found:
        return min(found), True
    keep = len(text)
    while keep and text[keep - 1] == "\ufffd":  # a character whose bytes have not all arrived yet
        keep -= 1
    held = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, keep), held, -1):
            if text[keep - size : keep] == stop[:size]:
                held = size
                break
    return keep - held, False


class RowStreamer(BaseStreamer):
    """Follows every row of one `generate` call (prompt tokens are not passed on)."""

    def __init__(self, tokenizer: Any, rows: list[Row], end_ids: set[int]) -> None:
        self.tokenizer, self.rows, self.end_ids = tokenizer, rows, end_ids
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate passes the prompts first
            self._prompt_seen = True
            return
        tokens = value.reshape(len(self.rows), -1)[:, -1].tolist()
        for row, token in zip(self.rows, tokens):
            self.add(row, int(token))

    def add(self, row: Row, token: int) -> bool:
        """One new token of one row (also what a CTranslate2 step callback calls); True once the row is done."""
        if row.done:
            return True
        if row.cancelled.is_set():
            row.finish_reason = CANCELLED
            return True
        row.ids.append(token)
        if token in self.end_ids:  # counted, never shown (whether or not the tokenizer calls it special)
            self._show(row, final=True, end=len(row.ids) - 1)
            row.finish_reason = STOP
        elif self._show(row, final=False):
            row.finish_reason = STOP
        elif len(row.ids) >= row.max_new_tokens:
            self._show(row, final=True)
            row.finish_reason = LENGTH
        return row.done

    def end(self) -> None:
        for row in self.rows:
            if not row.done:
                if row.cancelled.is_set():
                    row.finish_reason = CANCELLED
                    continue
                self._show(row, final=True)
                row.finish_reason = LENGTH

    def _show(self, row: Row, *, final: bool, end: int | None = None) -> bool:
        """Pass on the row's new text (of its tokens up to `end`); True when it reached a stop string."""
        decoded = self.tokenizer.decode(row.ids[:end], skip_special_tokens=True)
        keep, stopped = shown_length(decoded, row.stops)
        if final and not stopped:
            keep = len(decoded)
        new = decoded[len(row.text) : keep]
        if new:
            row.text += new
            if row.on_delta is not None:
                row.on_delta(new)
        return stopped


class RowsDone(StoppingCriteria):
    """Ends each row the streamer has finished (stop string, its own limit, cancelled)."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        done = [row.done or row.cancelled.is_set() for row in self.rows]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def sampling(
    temperature: float | None = None,
    top_p: float | None = None,
    top_k: int | None = None,
    repetition_penalty: float | None = None,
) -> dict[str, Any]:
    """`generate` arguments: greedy unless a temperature above 0 (or top_p / top_k alone, at temperature 1) asks to
    sample. The model's own sampling defaults are overridden either way, so a call means the same on every model."""
    sample = (temperature or 0) > 0 or (temperature is None and (top_p is not None or top_k is not None))
    settings: dict[str, Any] = {"do_sample": sample}
    if sample:
        settings.update(temperature=temperature or 1.0, top_p=top_p if top_p is not None else 1.0, top_k=top_k or 0)
    else:
        settings.update(temperature=1.0, top_p=1.0, top_k=50)  # the neutral values: no warning about unused ones
    if repetition_penalty is not None:
        settings["repetition_penalty"] = repetition_penalty
    return settings


# -- JSON schema -------------------------------------------------------------------------------------------------


def schema_text(schema: str | dict[str, Any]) -> str:
    """A JSON schema given as a dict or as JSON text, as JSON text (checked to parse)."""
    if isinstance(schema, dict):
        return json.dumps(schema)
    try:
        parsed = json.loads(schema)
    except ValueError as err:
        raise InputError(f"json_schema is not valid JSON ({err}); pass a JSON schema object.") from err
    if not isinstance(parsed, dict):
        raise InputError(f"json_schema must be a JSON object (a schema), got {type(parsed).__name__}.")
    return schema


class JsonGrammar:
    """llguidance's view of one tokenizer, made once per model (it reads the whole vocabulary)."""

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        try:
            import llguidance.hf
        except ImportError as err:
            raise HfappsError(
                "json_schema needs llguidance, which is not installed: pip install llguidance (the lm extra)."
            ) from err

        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)

    def compile(self, schema: str) -> Any:
        """The grammar for `schema` (JSON text); an invalid schema raises an InputError naming the problem."""
        from llguidance import LLMatcher

        grammar = LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
        matcher = LLMatcher(self.tokenizer, grammar)
        if matcher.is_error():
            raise InputError(f"The JSON schema is not one hfapps can constrain output to: {matcher.get_error()}.")
        return grammar

    def processor(self, grammar: Any) -> JsonSchemaProcessor:
        return JsonSchemaProcessor(self.tokenizer, grammar)


class JsonSchemaProcessor(LogitsProcessor):
    """Masks every token that would leave the schema; one llguidance matcher per row. Make one per `generate`."""

    def __init__(self, llg_tokenizer: Any, grammar: Any) -> None:
        self.llg_tokenizer, self.grammar = llg_tokenizer, grammar
        self.matchers: list[Any] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        import llguidance.torch
        from llguidance import LLMatcher

        rows = input_ids.shape[0]
        if self.matchers is None:
            self.matchers = [LLMatcher(self.llg_tokenizer, self.grammar) for _ in range(rows)]
            self.mask = llguidance.torch.allocate_token_bitmask(rows, self.llg_tokenizer.vocab_size)
        else:
            for row, matcher in enumerate(self.matchers):
                if not matcher.is_stopped() and not matcher.is_error():
                    matcher.consume_token(int(input_ids[row, -1]))
        for row, matcher in enumerate(self.matchers):
            if matcher.is_error():  # a row ended by other means (a stop string) gets padding: leave it be
                self.mask[row].fill_(-1)
            else:
                llguidance.torch.fill_next_token_bitmask(matcher, self.mask, row)
        llguidance.torch.apply_token_bitmask_inplace(scores, self.mask.to(scores.device))
        return scores


# -- a stream of text deltas ---------------------------------------------------------------------------------------


class _End:
    pass


class TextStream:
    """An iterator of text deltas, decoded on a thread of its own as the caller reads. After the last delta,
    `finish_reason` and `usage` say how it ended; `close()` (or leaving a `with` block) stops the decoding."""

    def __init__(self, prompt: Any, run: Callable[[], dict[str, Any]]) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._prompt = prompt
        prompt.on_delta = self._queue.put
        self.result: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(run,), daemon=True, name="hfapps-stream")
        self._thread.start()

    def _work(self, run: Callable[[], dict[str, Any]]) -> None:
        try:
            self.result = run()
        except BaseException as err:  # noqa: BLE001 - raised again on the reader's thread
            self._error = err
        finally:
            self._queue.put(_End)

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        item = self._queue.get()
        if item is _End:
            self._queue.put(_End)  # every later next() ends too
            self._thread.join()
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop decoding (the tokens already decoded are not shown)."""
        self._prompt.cancelled.set()

    def __enter__(self) -> TextStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self._prompt.cancelled.set()

    @property
    def finish_reason(self) -> str | None:
        """ "stop" (the end token or a stop string), "length", or "cancelled"; None while decoding."""
        return None if self.result is None else self.result.get("finish_reason")

    @property
    def usage(self) -> dict[str, int] | None:
        return None if self.result is None else self.result.get("usage")
