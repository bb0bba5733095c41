"""The language-model helpers: `chat` (a conversation through the model's chat template) and `generate` (plain
completion), with streaming, stop strings, sampling and JSON-schema output. They load and batch as every helper
does (`hfapps.api`): one input gives one result, a list a list in input order, any other iterable a lazy stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, TypedDict

from typing_extensions import Unpack

from . import ModelArg, Settings, _run


class DecodeOptions(Settings, total=False):
    """Chat and generate: `Settings` plus the decoding options (`hfapps.tasks.generation.DecodingOptions`)."""

    max_new_tokens: int | None
    temperature: float | None
    top_p: float | None
    top_k: int | None
    seed: int | None
    repetition_penalty: float | None
    stop: list[str] | None
    json_schema: str | dict[str, Any] | None
    response_format: dict[str, Any] | None


class ChatOptions(DecodeOptions, total=False):
    system: str | None
    long_input: Literal["refuse", "drop_oldest"] | None


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatAnswer(TypedDict):
    role: str
    content: str
    finish_reason: str
    usage: Usage


class Completion(TypedDict):
    generated_text: str
    finish_reason: str
    usage: Usage


Message = dict[str, str]


def chat(
    messages: str | list[Message] | list[list[Message]] | Iterable[list[Message]],
    *,
    model: ModelArg = None,
    stream: bool = False,
    **options: Unpack[ChatOptions],
) -> Any:
    """The assistant's answer (`{"role", "content", "finish_reason", "usage"}`) to one conversation (a list of
    `{"role", "content"}` messages, or a string: one user turn), a list of answers to a list of conversations
    (batched by length), or a lazy stream of them. `stream=True` (one conversation) returns a `TextStream` of text
    deltas as they decode. Decoding options: `max_new_tokens`, `temperature`, `top_p`, `top_k`, `seed`,
    `repetition_penalty`, `stop`, `json_schema` / `response_format`; `system`, `long_input`."""
    return _run("chat", messages, model, dict(options), {"stream": True} if stream else {})


def generate(
    prompts: str | Iterable[str], *, model: ModelArg = None, stream: bool = False, **options: Unpack[DecodeOptions]
) -> Any:
    """Plain completion: `{"generated_text", "finish_reason", "usage"}` per prompt (no chat template), in order;
    `stream=True` (one prompt) returns a `TextStream` of text deltas. The decoding options are chat's."""
    return _run("text-generation", prompts, model, dict(options), {"stream": True} if stream else {})
