"""Instruction tuning (supervised fine-tuning) of a chat model with TRL's `SFTTrainer`: `recipes/sft.yaml`.

The data are conversations: a `messages` column of OpenAI-style `{"role", "content"}` lists (JSONL), or
`prompt` / `completion` columns, or any labelled file turned into one question and its answer per row by
`prompt_template` (e.g. "Is this review positive or negative? {text}") with `label_column` as the answer, so that
a chat model learns a classifier. The loss covers the assistant's tokens only: TRL's `assistant_only_loss`, which
needs `{% generation %}` markers in the chat template; a model whose own template lacks them gets the matching
training template hfapps ships (hfapps/recipes/templates/: SmolLM2's, plain ChatML; they render byte for byte as
the model's own), else TRL's for its family, else a clear error naming `chat_template_path`. LoRA unless the
recipe drops `peft`; `packing: true` packs conversations into rows (TRL's best-fit, no cross-attention between
them). The output folder is a chat model: `hfapps.chat`, `hfapps export` and `hfapps serve` load it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset, DatasetDict
from transformers import AutoModelForCausalLM

from ..data import SAMPLE_DIR, read_file
from ..errors import DataError, RecipeError
from .chat import ROLES
from .embedding import Lazy
from .registry import register
from .training import TaskTraining, fingerprint

#: The training templates hfapps ships: each renders exactly as a model's own template, with the markers added.
TEMPLATES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes", "templates")
#: Conversations a training template must render exactly as the model's own does to stand in for it.
PROBES = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ],
]
MARKERS_FIX = (
    "Copy the template, wrap each assistant message's content and end token in {% generation %}...{% endgeneration "
    "%} (hfapps/recipes/templates/chatml.jinja shows how), and pass it as --chat_template_path my_template.jinja."
)


def instruction_arguments() -> type:
    """TRL's SFTConfig with hfapps' data keys and CPU-friendly defaults (float32 on a CPU: SFTConfig's default
    bf16 stops a CPU run; no gradient checkpointing, which costs a fifth more time for memory a CPU has)."""
    if "InstructionArguments" in globals():
        return globals()["InstructionArguments"]
    from trl import SFTConfig

    @dataclass
    class InstructionArguments(SFTConfig):
        messages_column: str = field(
            default="messages", metadata={"help": "sft: column of conversations ([{role, content}, ...])."}
        )
        prompt_column: str = field(default="prompt", metadata={"help": "sft: column of prompts (with completion)."})
        completion_column: str = field(
            default="completion", metadata={"help": "sft: column of the answers to prompt_column."}
        )
        prompt_template: str | None = field(
            default=None,
            metadata={
                "help": "sft: turn each row of a labelled file into a user message, e.g. 'Positive or negative? "
                "{text}' ({column} fields); label_column is the assistant's answer (label_list names indices)."
            },
        )
        system_prompt: str | None = field(
            default=None, metadata={"help": "sft: a system message put before each prompt_template conversation."}
        )
        # The model keys' own (command line only: a recipe may come from someone else), not a second copy here.
        trust_remote_code: bool = field(default=False, init=False)

        def __post_init__(self) -> None:
            if self.bf16 is None:
                import torch

                self.bf16 = bool(torch.cuda.is_available() and not self.use_cpu and torch.cuda.is_bf16_supported())
            super().__post_init__()

    # A module-level name, so that the Trainer can pickle the arguments into each checkpoint.
    InstructionArguments.__qualname__ = "InstructionArguments"
    globals()["InstructionArguments"] = InstructionArguments
    return InstructionArguments


def __getattr__(name: str) -> Any:
    """`InstructionArguments`, made on first use (it subclasses TRL's SFTConfig, which imports slowly)."""
    if name == "InstructionArguments":
        return instruction_arguments()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _text(value: Any) -> bool:
    return isinstance(value, str)


def instruction_trainer() -> type:
    """TRL's SFTTrainer, writing no model card of its own into the output folder at each checkpoint: hfapps writes
    the run's card once it has finished, and a resumed run finds only files it knows in the folder."""
    from trl import SFTTrainer

    class InstructionTrainer(SFTTrainer):
        def create_model_card(self, *args: Any, **kwargs: Any) -> None:
            return None

    return InstructionTrainer


def problem(conversation: Any) -> str | None:
    """What is wrong with one training conversation, or None."""
    if not isinstance(conversation, list) or not conversation:
        return "is not a non-empty list of messages"
    for position, message in enumerate(conversation, 1):
        if not isinstance(message, dict) or not _text(message.get("role")) or not _text(message.get("content")):
            return f"message {position} needs a 'role' and a text 'content' ({message!r})"
        if message["role"] not in ROLES:
            return f"message {position} has the unknown role {message['role']!r} (use {', '.join(ROLES)})"
    if not any(message["role"] == "assistant" for message in conversation):
        return "has no assistant message, so nothing to learn from"
    return None


class InstructionTraining(TaskTraining):
    """Supervised fine-tuning of a causal chat model on conversations (TRL's SFTTrainer, its own collator)."""

    name = "sft"
    auto_model = AutoModelForCausalLM
    peft_task_type = "CAUSAL_LM"
    trainer_class = Lazy("hfapps.tasks.instruction:instruction_trainer")
    arguments_class = Lazy("hfapps.tasks.instruction:instruction_arguments")
    training_defaults = {
        "ddp_find_unused_parameters": False,
        "gradient_checkpointing": False,
        "assistant_only_loss": True,
        "logging_steps": 10,
    }
    sample_file = "instructions.jsonl"
    sample_columns = {"messages": "messages_column"}

    @property
    def options(self) -> Any:
        """The recipe's sft keys (its training arguments); defaults when the runner has not handed them over."""
        found = getattr(self, "training_args", None)
        if found is None or not hasattr(found, "messages_column"):
            found = _Defaults()
        return found

    def load_sample(self) -> Dataset:
        """hfapps' sample chats; with a prompt_template, its labelled sample reviews (text, label) instead."""
        if self.options.prompt_template is not None:
            return read_file(f"{SAMPLE_DIR}/sentiment.csv").select_columns(["text", "label"])
        return read_file(f"{SAMPLE_DIR}/{self.sample_file}").select_columns(["messages"])

    def prepare(self, splits: DatasetDict) -> DatasetDict:
        """Every split as one `messages` column of conversations."""
        return DatasetDict({name: self._conversations(split, name) for name, split in splits.items()})

    def _conversations(self, split: Dataset, name: str) -> Dataset:
        opts, columns = self.options, split.column_names
        if opts.prompt_template is not None:
            label = self.args.label_column
            if label not in columns:
                raise DataError(
                    f"prompt_template needs the answer column label_column={label!r}, which the {name} split does "
                    f"not have; its columns are {columns}. Set --label_column."
                )
            # The fingerprint from the settings, so that datasets never pickles this task to hash the function.
            settings = [opts.prompt_template, opts.system_prompt, label, self.args.label_list]
            return split.map(
                self._from_template,
                remove_columns=columns,
                desc="Writing instructions",
                new_fingerprint=fingerprint(split, "sft-template", *settings),
            )
        if opts.messages_column in columns:
            return split.select_columns([opts.messages_column]).rename_columns(
                {opts.messages_column: "messages"} if opts.messages_column != "messages" else {}
            )
        if opts.prompt_column in columns and opts.completion_column in columns:
            return split.map(
                self._from_pair,
                remove_columns=columns,
                desc="Writing conversations",
                new_fingerprint=fingerprint(split, "sft-pairs", opts.prompt_column, opts.completion_column),
            )
        raise DataError(
            f"The {name} split has the columns {columns}; sft reads a {opts.messages_column!r} column of "
            f"conversations, {opts.prompt_column!r} and {opts.completion_column!r} columns, or any labelled file "
            "with --prompt_template 'Question about {text}' --label_column label. Set messages_column (or "
            "prompt_column and completion_column) to your columns' names."
        )

    def _from_template(self, row: dict[str, Any]) -> dict[str, Any]:
        opts = self.options
        try:
            prompt = opts.prompt_template.format(**row)
        except (KeyError, IndexError) as err:
            raise RecipeError(
                f"prompt_template {opts.prompt_template!r} names {err}, which is not a column; the columns are "
                f"{sorted(row)}."
            ) from None
        answer = row[self.args.label_column]
        names = self.args.label_list
        if names and isinstance(answer, int) and 0 <= answer < len(names):
            answer = names[answer]
        system = [{"role": "system", "content": opts.system_prompt}] if opts.system_prompt else []
        return {
            "messages": [*system, {"role": "user", "content": prompt}, {"role": "assistant", "content": str(answer)}]
        }

    def _from_pair(self, row: dict[str, Any]) -> dict[str, Any]:
        prompt, completion = row[self.options.prompt_column], row[self.options.completion_column]
        if _text(prompt):
            prompt = [{"role": "user", "content": prompt}]
        if _text(completion):
            completion = [{"role": "assistant", "content": completion}]
        both = [*prompt, *completion] if isinstance(prompt, list) and isinstance(completion, list) else None
        return {"messages": both}

    def columns(self) -> list[str]:
        return ["messages"]

    def check(self, splits: DatasetDict) -> None:
        """Every conversation is well formed, before any weights load; a bad one is named by file and row."""
        for name, split in splits.items():
            for index, conversation in enumerate(split["messages"]):
                wrong = problem(conversation)
                if wrong is not None:
                    raise DataError(self._where(name, index, wrong))

    def _where(self, split_name: str, index: int, wrong: str) -> str:
        """The message for a bad conversation: its file and row (1-based, as read), found again in file order
        (a validation split held out of train is shuffled)."""
        path = {"train": self.args.train_file, "test": self.args.test_file}.get(split_name)
        if split_name == "validation":
            path = self.args.validation_file or self.args.train_file
        fix = "Fix or drop that row; each row needs a list of {role, content} messages with an assistant turn."
        if path:
            raw = self._conversations(read_file(path, column_names=self.args.column_names), split_name)
            for number, conversation in enumerate(raw["messages"], 1):
                found = problem(conversation)
                if found is not None:
                    return f"{path}, row {number}: the conversation {found}. {fix}"
        source = "hfapps' sample data" if self.args.dataset_name == "sample" else self.args.dataset_name
        return f"{source} ({split_name} split), row {index + 1}: the conversation {wrong}. {fix}"

    def tokenize(self, split: Dataset, tokenizer: Any, model_config: Any) -> Dataset:
        """TRL tokenises the conversations itself; here the tokenizer gets a template it can mask the loss with."""
        if self.options.assistant_only_loss and not self.options.chat_template_path:
            tokenizer.chat_template = training_template(tokenizer)
        return split

    def collator(self, tokenizer: Any, model: Any) -> Any:
        return None  # TRL's own: padding, or packing with position ids

    def scorable(self) -> bool:
        return False  # scored by its loss; `hfapps.chat` runs the result

    def meta(self, tokenizer: Any, model_config: Any) -> dict[str, Any]:
        return {"task": "chat", "trained_as": "sft"}


class _Defaults:
    """The sft keys' defaults, for a task built outside the runner (e.g. to read its sample data)."""

    messages_column, prompt_column, completion_column = "messages", "prompt", "completion"
    prompt_template = system_prompt = chat_template_path = None
    assistant_only_loss = True


def training_template(tokenizer: Any) -> str:
    """The model's chat template if it marks the assistant's tokens; else a shipped or TRL template that renders
    exactly as it does, with the markers. Refuses a template no training version is known for."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    own = tokenizer.chat_template
    name = getattr(tokenizer, "name_or_path", "") or "the model"
    if not own:
        raise RecipeError(f"{name!r} has no chat template, so sft cannot tell its turns apart. {MARKERS_FIX}")
    if has_generation_markers(own):
        return str(own)
    for file in sorted(os.listdir(TEMPLATES_DIR)) if os.path.isdir(TEMPLATES_DIR) else []:
        with open(os.path.join(TEMPLATES_DIR, file), encoding="utf-8") as handle:
            candidate = handle.read()
        if _renders_alike(tokenizer, own, candidate):
            return candidate
    try:
        found = get_training_chat_template(tokenizer)
    except ValueError:
        found = None
    if found and _renders_alike(tokenizer, own, found):
        return str(found)
    raise RecipeError(
        f"The chat template of {name!r} has no {{% generation %}} markers, which tell the trainer the assistant's "
        f"tokens (the only ones the loss covers), and hfapps knows no training version of it. {MARKERS_FIX} Or "
        "train on every token with --assistant_only_loss false."
    )


def _renders_alike(tokenizer: Any, own: str, candidate: str) -> bool:
    for conversation in PROBES:
        for prompt in (False, True):
            try:
                texts = [
                    tokenizer.apply_chat_template(
                        conversation, chat_template=t, tokenize=False, add_generation_prompt=prompt
                    )
                    for t in (own, candidate)
                ]
            except Exception:  # noqa: BLE001 - a template that cannot render a probe does not stand in for it
                return False
            if texts[0] != texts[1]:
                return False
    return True


register(InstructionTraining)
