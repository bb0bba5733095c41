"""Chat: OpenAI-style conversations through the model's chat template, answered as
`{"role": "assistant", "content", "finish_reason", "usage"}`.

One conversation is a list of `{"role", "content"}` messages (roles system, user, assistant) that ends with a user
turn; a string is one user turn. A list of conversations is answered in order, in length-sorted batches, and
`stream=True` returns the text deltas of one answer as they decode. The decoding itself (stop strings, sampling,
JSON schema, the window) is `hfapps.tasks.generation`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InputError, TaskMismatchError
from ..inference.decoding import Row
from .call_options import option
from .generation import DecodingOptions, LanguageModelTask, Prompt
from .registry import register

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatOptions(DecodingOptions):
    system: str | None = option(None, "a system prompt, for conversations that do not start with one")
    long_input: str | None = option(
        "refuse",
        "a conversation over the model's window: 'refuse' it, or 'drop_oldest' turns (the system prompt and the "
        "last user turn are kept) until it fits",
        choices=("refuse", "drop_oldest"),
    )


def check_messages(conversation: Any, index: int | None = None) -> list[dict[str, str]]:
    """A conversation's messages, checked: each a {"role", "content"} dict with a known role and text content, the
    last one from the user. Raises an InputError naming the message and the fix."""
    where = "" if index is None else f" (conversation {index})"
    if isinstance(conversation, str):
        conversation = [{"role": "user", "content": conversation}]
    if not isinstance(conversation, (list, tuple)) or not conversation:
        raise InputError(
            f"A conversation{where} is a non-empty list of {{'role', 'content'}} messages (or one string, a user "
            f"turn); got {type(conversation).__name__}."
        )
    messages = []
    for position, message in enumerate(conversation):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise InputError(
                f"Message {position}{where} needs a 'role' and a 'content', got {message!r:.80}: write it as "
                "{'role': 'user', 'content': '...'}."
            )
        if message["role"] not in ROLES:
            raise InputError(
                f"Message {position}{where} has the unknown role {message['role']!r}; use one of {', '.join(ROLES)}."
            )
        if not isinstance(message["content"], str):
            raise InputError(
                f"Message {position}{where} has {type(message['content']).__name__} content; it must be a string."
            )
        messages.append({"role": message["role"], "content": message["content"]})
    if messages[-1]["role"] != "user":
        raise InputError(
            f"The conversation{where} ends with a message from {messages[-1]['role']}; the model answers a user "
            "turn, so end it with {'role': 'user', 'content': '...'}."
        )
    return messages


@register
class Chat(LanguageModelTask):
    """Answer conversations with a chat model (one that has a chat template). Default: the packaged
    SmolLM2-135M-Instruct."""

    name = "chat"
    aliases = ("chat-completion", "conversational")
    command = None  # `hfapps chat` is an interactive session (hfapps/cli/chat.py), not the batch runner
    what = "conversation"
    options = ChatOptions
    agreement_key = "content"
    add_special_tokens = False  # the chat template writes the special tokens itself

    def _build(self, *, allow_pickle: bool) -> None:
        if not getattr(self.tokenizer, "chat_template", None):
            raise TaskMismatchError(
                f"{self.ref.name!r} has no chat template, so it cannot chat: use an instruction-tuned model (e.g. "
                "SmolLM2-135M-Instruct), or hfapps' text-generation task for plain completion."
            )
        super()._build(allow_pickle=allow_pickle)

    def _is_many(self, inputs: Any) -> bool:
        return isinstance(inputs, (list, tuple)) and any(not isinstance(item, dict) for item in inputs)

    def __call__(self, inputs: Any, **options: Any) -> Any:
        """A conversation (a list of messages, or one string) gives one answer; a list of conversations a list."""
        if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(m, dict) for m in inputs):
            return super().__call__(_One(inputs), **options)
        return super().__call__(inputs, **options)

    def _check(self, item: Any, index: int | None) -> Prompt:
        if isinstance(item, _One):
            item = list(item.messages)
        return super()._check(item, index)

    def _render(self, item: Any, index: int | None) -> Prompt:
        messages = check_messages(item, index)
        return Prompt(self._template(messages), messages)

    def _template(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def prepare(self, prompts: list[Prompt], options: dict[str, Any]) -> None:
        system = options.get("system")
        for prompt in prompts:
            if system and prompt.messages and prompt.messages[0]["role"] != "system":
                prompt.messages = [{"role": "system", "content": system}, *prompt.messages]
                prompt.text = self._template(prompt.messages)
        super().prepare(prompts, options)

    def _shorten(self, prompt: Prompt, options: Any) -> bool:
        if options.long_input != "drop_oldest" or prompt.messages is None:
            return False
        messages = prompt.messages
        first = 1 if messages[0]["role"] == "system" else 0
        if len(messages) - first <= 1:  # only the last user turn is left
            return False
        del messages[first]
        while len(messages) - first > 1 and messages[first]["role"] != "user":  # start on a user turn again
            del messages[first]
        prompt.text = self._template(messages)
        return True

    def _long_input_hint(self) -> str:
        return ", or pass long_input='drop_oldest' to drop its oldest turns"

    def _result(self, row: Row) -> dict[str, Any]:
        return {"role": "assistant", "content": row.text, "finish_reason": row.finish_reason, "usage": row.usage}


class _One(dict):
    """One conversation passed where a list would mean many: the shared call machinery takes a dict as one input."""

    def __init__(self, messages: Any) -> None:
        super().__init__()
        self.messages = messages
