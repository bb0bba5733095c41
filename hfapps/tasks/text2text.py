"""What summarization and translation share: an encoder-decoder model through hfapps' registered
pipeline, or a causal chat model prompted through `text-generation`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from datasets import Dataset, DatasetDict
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    DataCollatorForSeq2Seq,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
)
from transformers import pipeline as make_pipeline
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
)

from .. import models
from ..data import require_text
from ..errors import InputError, TaskMismatchError
from ..inference import packing
from ..inference.prompting import ChatGenerator
from ..runtimes import ct2
from .base import Task
from .call_options import option
from .training import TaskTraining

#: Room kept for the answer (at most half the window) when a chat prompt is clipped to the model's window.
CHAT_ANSWER_ROOM = 512
#: Room kept in an encoder-decoder model's window for its task prefix and special tokens.
PREFIX_ROOM = 16


@dataclass(frozen=True)
class GenerationOptions:
    """Options passed on to `generate` (unset ones keep the model's own generation settings)."""

    max_new_tokens: int | None = option(None, minimum=1, help="the longest output, in tokens")
    min_new_tokens: int | None = option(None, minimum=0, help="the shortest output, in tokens")
    max_length: int | None = option(None, minimum=1, help="the longest output including the prompt, in tokens")
    num_beams: int | None = option(None, minimum=1, help="beam search width (1: greedy)")
    do_sample: bool | None = option(None, "sample instead of picking the likeliest tokens")
    temperature: float | None = option(None, above=0, help="sampling temperature")
    top_p: float | None = option(
        None, above=0, maximum=1, help="nucleus sampling: keep the likeliest tokens up to this probability"
    )
    repetition_penalty: float | None = option(None, above=0, help="penalty for repeating tokens (1.0: none)")
    no_repeat_ngram_size: int | None = option(None, minimum=0, help="never repeat an n-gram of this size")
    length_penalty: float | None = option(None, "beam search: >1 favours longer outputs")


GENERATION_KEYS = tuple(f.name for f in fields(GenerationOptions))
#: The options that say how long inputs are cut (read by `_run`, never passed to the model).
LONG_INPUT_KEYS = ("long_input", "chunk_tokens", "chunk_overlap")


class TextToText(Task):
    pipeline_name: ClassVar[str]
    output_key: ClassVar[str]
    #: max_new_tokens when the caller gives none and the model's generation config sets no length.
    default_max_new_tokens: ClassVar[int] = 128
    #: Batches are not split to save padding: each one repeats the decoding loop, whose steps cost about the
    #: same for a few sequences as for a full batch (the SmolLM2 chat path: 9.8 texts/s split, 11.7 whole).
    splits_padded_batches = False
    export_format = "ctranslate2"

    @classmethod
    def claims(cls, config: Any) -> int:
        return 1 if models.model_kind(config) in ("encoder-decoder", "causal") else 0

    @classmethod
    def export_auto_class(cls, config: Any) -> type:
        return AutoModelForSeq2SeqLM if models.model_kind(config) == "encoder-decoder" else AutoModelForCausalLM

    def _build(self, *, allow_pickle: bool) -> None:
        model_type = self.config.model_type
        self.chat: ChatGenerator | ct2.ChatRunner | None = None
        self.ct2: ct2.Seq2SeqRunner | None = None
        if self.runtime == "ctranslate2":  # an `hfapps export --format ctranslate2` folder
            seq2seq = bool(self.config.is_encoder_decoder)
            exported = self._load(AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM, allow_pickle=False)
            self.exported = exported  # its engine's compute type is this task's precision
            if seq2seq:
                self.ct2 = ct2.Seq2SeqRunner(exported, self.tokenizer, self.name, self.max_input_tokens)
            else:
                self.chat = ct2.ChatRunner(exported, self.tokenizer)
            self.generation_config = exported.generation_config
            return
        if model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES and self.config.is_encoder_decoder:
            models.require_head(
                self.config,
                self.ref,
                suffixes=("ForConditionalGeneration", "MTModel", "Seq2SeqLM"),
                task=self.name,
                hint="Pass an encoder-decoder model with its language-model head (T5, BART, Marian).",
            )
            from .. import pipelines  # noqa: F401  (registers hfapps' pipelines with transformers)

            model = self._load(AutoModelForSeq2SeqLM, allow_pickle=allow_pickle)
            self.pipeline = make_pipeline(self.pipeline_name, model=model, tokenizer=self.tokenizer, device=self.device)
        elif model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and getattr(self.tokenizer, "chat_template", None):
            model = self._load(AutoModelForCausalLM, allow_pickle=allow_pickle)
            self.chat = ChatGenerator(model, self.tokenizer, self.device)
        else:
            kind = ", ".join(getattr(self.config, "architectures", None) or [model_type])
            raise TaskMismatchError(
                f"{self.ref.name!r} ({kind}) cannot do {self.name}: it needs an encoder-decoder model "
                "(T5, BART, Marian, Pegasus, ...) or a causal chat model with a chat template."
            )
        self.generation_config = model.generation_config
        if packing.available(self.device, self.dtype):
            packing.pack_linear_layers(model)  # decoding's few-row products (hfapps/packing.py)

    def _generation(self, options: dict[str, Any]) -> dict[str, Any]:
        """The caller's generation settings, plus a length cap when neither they nor the model set one."""
        generation_config = self.generation_config
        model_sets_length = generation_config.max_new_tokens is not None or generation_config.max_length not in (
            None,
            20,
        )
        if not any(k in options for k in ("max_new_tokens", "max_length")) and (
            self.chat is not None or not model_sets_length
        ):
            options["max_new_tokens"] = self.default_max_new_tokens
        return options

    def _split_options(self, options: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """(this task's own options, the ones that go to `generate`)."""
        given = {k: v for k, v in vars(options).items() if v is not None and k not in LONG_INPUT_KEYS}
        return (
            {k: v for k, v in given.items() if k not in GENERATION_KEYS},
            {k: v for k, v in given.items() if k in GENERATION_KEYS},
        )

    @property
    def window_tokens(self) -> int:
        """The most tokens of text that one call takes: the window less the chat prompt's answer room, or less
        room for an encoder-decoder model's task prefix."""
        window = self.max_input_tokens
        room = min(CHAT_ANSWER_ROOM, window // 2) if self.chat is not None else PREFIX_ROOM
        return max(16, window - room)

    def _chunk_budget(self, options: dict[str, Any], default: int) -> int:
        """Tokens per chunk of a long input: the caller's `chunk_tokens`, else `default`, within the window."""
        asked = options.get("chunk_tokens")
        if asked is not None and asked > self.window_tokens:
            raise InputError(
                f"chunk_tokens={asked} is over what {self.ref.name!r} takes in one piece "
                f"({self.window_tokens} tokens); use at most that."
            )
        return asked or min(default, self.window_tokens)

    def _prompt(self, text: str, **task_options: Any) -> str:
        """The user message that asks a chat model to do this task on `text`."""
        raise NotImplementedError

    def _seq2seq_options(self, **task_options: Any) -> dict[str, Any]:
        """Pipeline options that carry this task's own options to an encoder-decoder model."""
        if self.meta.get("prefix") is not None:  # a `hfapps train` output knows its own prefix
            return {"input_prefix": self.meta["prefix"]}
        return {}

    def _predict(self, batch: list[str], options: Any) -> list[dict[str, str]]:
        task_options, generate_options = self._split_options(options)
        if self.chat is not None:
            prompts = [self._prompt(self.chat.clip(text, self.window_tokens), **task_options) for text in batch]
            return [{self.output_key: out} for out in self.chat(prompts, **self._generation(generate_options))]
        if self.ct2 is not None:
            texts = self.ct2(batch, **self._seq2seq_options(**task_options), **self._generation(generate_options))
            return [{self.output_key: text} for text in texts]
        return self.pipeline(
            batch, batch_size=len(batch), **self._seq2seq_options(**task_options), **self._generation(generate_options)
        )


class Seq2SeqTraining(TaskTraining):
    """Fine-tune an encoder-decoder model on (source text, target text) pairs."""

    auto_model = AutoModelForSeq2SeqLM
    peft_task_type = "SEQ_2_SEQ_LM"
    trainer_class = Seq2SeqTrainer
    arguments_class = Seq2SeqTrainingArguments
    # The LM loss is averaged over tokens, so the Trainer's DDP token averaging is right for it.
    training_defaults = {"ddp_find_unused_parameters": False}

    def source_target(self) -> tuple[str, str]:
        raise NotImplementedError

    def configure(self, model) -> None:
        # Saved with the model, so the helper generates targets as long as the ones trained on.
        model.generation_config.max_new_tokens = self.args.max_target_length

    def task_prefix_key(self) -> str:
        raise NotImplementedError

    def columns(self) -> list[str]:
        return list(self.source_target())

    def check(self, splits: DatasetDict) -> None:
        for name, split in splits.items():
            for column in self.source_target():
                require_text(split, column, name)

    def prefix(self, model_config) -> str:
        """The recipe's source_prefix, else the checkpoint's own for this task (T5), else none."""
        if self.args.source_prefix is not None:
            return self.args.source_prefix
        params = getattr(model_config, "task_specific_params", None) or {}
        return (params.get(self.task_prefix_key()) or {}).get("prefix", "")

    def tokenize(self, split: Dataset, tokenizer, model_config) -> Dataset:
        source, target = self.source_target()
        prefix = self.prefix(model_config)

        def encode(batch):
            encoded = tokenizer(
                [prefix + text for text in batch[source]], truncation=True, max_length=self.args.max_seq_length
            )
            encoded["labels"] = tokenizer(
                text_target=batch[target], truncation=True, max_length=self.args.max_target_length
            )["input_ids"]
            return encoded

        return self.encoded(split, encode, tokenizer)

    def collator(self, tokenizer, model):
        return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)

    def helper_inputs(self, split: Dataset) -> list[Any]:
        return list(split[self.source_target()[0]])

    def references(self, split: Dataset) -> list[str]:
        return list(split[self.source_target()[1]])
