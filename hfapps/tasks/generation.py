"""Plain text generation with a causal language model: `{"generated_text", "finish_reason", "usage"}` per prompt.

    hfapps generate --input posts.txt --output generated.jsonl --max-new-tokens 16

What it shares with chat (`hfapps.tasks.chat`) is here: loading any causal LM hfapps loads (a Hub id, a folder, a
GGUF file, a LoRA folder), fitting each prompt into the model's window, length-sorted left-padded batches run by
`generate` with one `RowStreamer` following every row (stop strings, per-row limits, cancelled rows), sampling,
a JSON schema, and `stream=True`, which returns a `TextStream` of text deltas for one prompt.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from transformers import AutoModelForCausalLM, LogitsProcessorList, StoppingCriteriaList

from .. import models
from ..errors import InputError, TaskMismatchError
from ..inference import packing
from ..inference.decoding import JsonGrammar, Row, RowsDone, RowStreamer, TextStream, sampling, schema_text
from ..inference.inputs import check_text, shape_of
from ..runtimes import ct2
from . import call_options, samples
from .base import Task
from .call_options import option
from .registry import register

#: New tokens per answer when the caller does not say (fewer where the window leaves less room).
DEFAULT_MAX_NEW_TOKENS = 256


@dataclass(frozen=True)
class DecodingOptions:
    """How a language model decodes (every option is a `generate` setting or hfapps' own around it)."""

    max_new_tokens: int | None = option(
        None, minimum=1, help=f"the most new tokens per answer (default {DEFAULT_MAX_NEW_TOKENS}, within the window)"
    )
    temperature: float | None = option(None, minimum=0, help="sampling temperature (0 or unset: greedy)")
    top_p: float | None = option(None, above=0, maximum=1, help="nucleus sampling: keep tokens up to this probability")
    top_k: int | None = option(None, minimum=1, help="sample among the k likeliest tokens")
    seed: int | None = option(None, minimum=0, help="random seed for sampling (the same seed, the same answer)")
    repetition_penalty: float | None = option(None, above=0, help="penalty for repeating tokens (1.0: none)")
    stop: list | None = option(None, "strings that end the answer; never part of it")
    json_schema: str | None = option(None, "a JSON schema (as JSON text) the answer must follow")


@dataclass
class Prompt:
    """One checked input: its text as the model reads it, and (for a stream) where its new text goes."""

    text: str
    messages: list[dict[str, str]] | None = None
    on_delta: Callable[[str], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS


class LanguageModelTask(Task):
    """What plain generation and chat share; a subclass says what one input is and what one result is."""

    #: Inputs over the window are refused (naming the window and the count), never silently cut.
    truncates = False
    #: Each batch repeats the decoding loop, whose steps cost about the same for a few rows as for a full batch.
    splits_padded_batches = False
    default_model = "HuggingFaceTB/SmolLM2-135M-Instruct"
    export_format = "ctranslate2"
    #: Whether the tokenizer adds its special tokens (a BOS) to a prompt; a chat template writes its own.
    add_special_tokens: ClassVar[bool] = True

    @classmethod
    def export_auto_class(cls, config: Any) -> type:
        return AutoModelForCausalLM

    @classmethod
    def sample_inputs(cls) -> tuple[list[Any], dict[str, Any]]:
        return samples.column("sentiment.csv", "text")[:8], {"max_new_tokens": 32}

    def _build(self, *, allow_pickle: bool) -> None:
        if models.model_kind(self.config) != "causal":
            kind = ", ".join(getattr(self.config, "architectures", None) or [self.config.model_type])
            raise TaskMismatchError(
                f"{self.ref.name!r} ({kind}) cannot do {self.name}: it needs a causal language model "
                "(Llama, SmolLM2, Qwen, GPT-2, ...)."
            )
        self.ct2: ct2.Ct2Model | None = None
        self._json: JsonGrammar | None = None
        # One decoding at a time per loaded model: streams run on threads of their own, and the packed weights
        # (inference/packing.py) are shared state of the model.
        self._decoding = threading.Lock()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.runtime == "ctranslate2":  # an `hfapps export --format ctranslate2` folder
            self.exported = self.ct2 = self._load(AutoModelForCausalLM, allow_pickle=False)
            self._set_end_ids(self.ct2.generation_config.eos_token_id)
            return
        self.model = self._load(AutoModelForCausalLM, allow_pickle=allow_pickle)
        self.model.eval()
        self.tokenizer.padding_side = "left"  # a decoder continues from the right edge
        self._set_end_ids(self.model.generation_config.eos_token_id)
        if packing.available(self.device, self.dtype):
            packing.pack_linear_layers(self.model)  # decoding's few-row products (hfapps/inference/packing.py)

    def _set_end_ids(self, ends: int | list[int] | None) -> None:
        ends = ends if ends is not None else self.tokenizer.eos_token_id
        self.end_ids: set[int] = {ends} if isinstance(ends, int) else set(ends or [])

    # -- what one input is -----------------------------------------------------------------------

    def _render(self, item: Any, index: int | None) -> Prompt:
        return Prompt(check_text(item, index, what=self.what))

    def _check(self, item: Any, index: int | None) -> Prompt:
        if isinstance(item, Prompt):  # checked already (the server checks before it queues)
            return item
        return self._render(item, index)

    def _text_of(self, item: Prompt) -> str:
        return item.text

    def _shorten(self, prompt: Prompt, options: Any) -> bool:
        """Make a prompt that is over the window shorter (chat: drop its oldest turns); False: it cannot be."""
        return False

    def _long_input_hint(self) -> str:
        return ""

    # -- calls -----------------------------------------------------------------------------------

    def __call__(self, inputs: Any, **options: Any) -> Any:
        """Results as the other helpers return them; `stream=True` (one input) returns a `TextStream` of text
        deltas instead. `json_schema` may be a dict; `response_format` takes OpenAI's shape of it."""
        stream = options.pop("stream", False)
        _schema_option(options)
        if not stream:
            return super().__call__(inputs, **options)
        options = call_options.check(self.options, options, task=self.name)
        if shape_of(inputs, what=f"{self.what}s") != "single" or self._is_many(inputs):
            raise InputError(f"stream=True takes one {self.what}; call once per {self.what} to stream several.")
        return self.stream(self._check(inputs, None), options)

    def _is_many(self, inputs: Any) -> bool:
        return False

    def stream(self, prompt: Prompt, options: dict[str, Any]) -> TextStream:
        """Decode one checked prompt on a thread of its own; its text arrives through the returned iterator."""
        self.prepare([prompt], options)
        return TextStream(prompt, lambda: self._run([prompt], options, show_progress=False)[0])

    def prepare(self, prompts: list[Prompt], options: dict[str, Any]) -> None:
        """Fit each prompt into the window and check the options, before anything runs: a bad input or option
        raises an InputError here (the server's 4xx), not after other prompts were decoded."""
        settings = self.options(**{k: v for k, v in options.items() if k != "batch_size"})
        window = self.max_input_tokens
        asked = settings.max_new_tokens
        if asked is not None and asked >= window:
            raise InputError(
                f"max_new_tokens={asked} is over what {self.ref.name!r} can write: its window is {window} tokens, "
                "prompt included. Ask for fewer new tokens."
            )
        if settings.json_schema is not None:
            if self.ct2 is not None:
                raise InputError(
                    "json_schema needs the PyTorch model: CTranslate2 takes no logits processor. Load the model "
                    f"{self.ref.name!r} was exported from for schema-constrained answers."
                )
            self._grammar(settings.json_schema)
        for index, prompt in enumerate(prompts):
            while True:
                prompt.ids = self.tokenizer(prompt.text, add_special_tokens=self.add_special_tokens, verbose=False)[
                    "input_ids"
                ]
                if len(prompt.ids) + (asked or 1) <= window:
                    break
                if not self._shorten(prompt, settings):
                    where = "" if len(prompts) == 1 else f" at index {index}"
                    room = f" and asks for {asked} new tokens" if asked else ""
                    raise InputError(
                        f"The {self.what}{where} is {len(prompt.ids)} tokens{room}: more than {self.ref.name!r}'s "
                        f"window of {window} tokens. Shorten it{' or ask for fewer new tokens' if asked else ''}"
                        f"{self._long_input_hint()}."
                    )
            prompt.max_new_tokens = asked or min(DEFAULT_MAX_NEW_TOKENS, window - len(prompt.ids))

    def _grammar(self, schema: str) -> Any:
        if self._json is None:
            self._json = JsonGrammar(self.tokenizer, self.model.config.vocab_size)
        return self._json.compile(schema_text(schema))

    def _run(self, items: list[Any], options: dict[str, Any], show_progress: bool | None = None) -> list[Any]:
        if items and any(not item.ids for item in items):
            self.prepare([item for item in items if not item.ids], options)
        return super()._run(items, options, show_progress)

    def _predict(self, batch: list[Prompt], options: Any) -> list[dict[str, Any]]:
        rows = [Row(len(p.ids), p.max_new_tokens, tuple(options.stop or ()), p.on_delta, p.cancelled) for p in batch]
        settings = sampling(options.temperature, options.top_p, options.top_k, options.repetition_penalty)
        with self._decoding:
            if self.ct2 is not None:
                self._predict_ct2(self.ct2, batch, rows, settings, options.seed)
            else:
                self._generate(batch, rows, settings, options)
        return [self._result(row) for row in rows]

    def _generate(self, batch: list[Prompt], rows: list[Row], settings: dict[str, Any], options: Any) -> None:
        encoded = self.tokenizer.pad({"input_ids": [p.ids for p in batch]}, padding=True, return_tensors="pt")
        processors = LogitsProcessorList()
        if options.json_schema is not None:
            assert self._json is not None  # `prepare` compiled it
            processors.append(self._json.processor(self._grammar(options.json_schema)))
        seeded = torch.random.fork_rng(devices=[]) if options.seed is not None else nullcontext()
        with seeded:
            if options.seed is not None:
                torch.manual_seed(options.seed)
            self.model.generate(
                **encoded.to(self.device),
                max_new_tokens=max(row.max_new_tokens for row in rows),
                streamer=RowStreamer(self.tokenizer, rows, self.end_ids),
                stopping_criteria=StoppingCriteriaList([RowsDone(rows)]),
                logits_processor=processors,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=sorted(self.end_ids) or None,
                **settings,
            )

    def _predict_ct2(
        self, model: ct2.Ct2Model, batch: list[Prompt], rows: list[Row], settings: dict[str, Any], seed: int | None
    ) -> None:
        """The same rows on a CTranslate2 export: its step callback feeds the streamer, and ends a row when it
        says so (CTranslate2 stops that row alone)."""
        streamer = RowStreamer(self.tokenizer, rows, self.end_ids)
        longest = max(row.max_new_tokens for row in rows)
        arguments = ct2.decoding_options({**settings, "max_new_tokens": longest}, model.generation_config, chat=True)
        engine = model.engine if seed is None else model.seeded(seed)  # the same seed, the same text
        starts = [self.tokenizer.convert_ids_to_tokens(p.ids) for p in batch]
        engine.generate_batch(
            starts,
            max_batch_size=model.share(starts) if engine is model.engine else 0,
            include_prompt_in_result=False,
            end_token=sorted(self.end_ids) or None,
            callback=lambda step: streamer.add(rows[step.batch_id], int(step.token_id)),
            **arguments,
        )
        streamer.end()

    def _result(self, row: Row) -> dict[str, Any]:
        raise NotImplementedError


def _schema_option(options: dict[str, Any]) -> None:
    """`json_schema` as a dict, or OpenAI's `response_format`, as the JSON text the option takes."""
    response_format = options.pop("response_format", None)
    if response_format is not None:
        options["json_schema"] = response_schema(response_format)
    if isinstance(options.get("json_schema"), dict):
        options["json_schema"] = json.dumps(options["json_schema"])


def response_schema(response_format: Any) -> str | None:
    """The JSON schema of OpenAI's `response_format` ({"type": "json_schema", "json_schema": {"schema": ...}},
    {"type": "json_object"} or {"type": "text"}), as JSON text; None for plain text."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return json.dumps({"type": "object"})
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return json.dumps(schema)
    raise InputError(
        'response_format takes {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}, '
        f'{{"type": "json_object"}} or {{"type": "text"}}; got {response_format!r:.120}.'
    )


@register
class Generation(LanguageModelTask):
    """Continue each prompt: `{"generated_text": ..., "finish_reason": "stop" | "length", "usage": {...}}`.

    The prompt goes to the model as it is (with the tokenizer's start token), not through a chat template; for a
    conversation use chat. Default model: the packaged SmolLM2-135M-Instruct."""

    name = "text-generation"
    aliases = ("generate", "generation")
    command = "generate"
    what = "prompt"
    options = DecodingOptions
    agreement_key = "generated_text"

    @classmethod
    def claims(cls, config: Any) -> int:
        return 0  # `hfapps export` finds causal models through summarize/translate's chat path

    def _result(self, row: Row) -> dict[str, Any]:
        return {"generated_text": row.text, "finish_reason": row.finish_reason, "usage": row.usage}
