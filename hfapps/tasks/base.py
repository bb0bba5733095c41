"""What every task shares: loading, input checks, length-sorted batching, progress and result order.

A task module subclasses `Task`, describes itself in class attributes (name, aliases, command, default
model, typed call options, training part, how it exports) and fills in `_build` (make its pipeline) and
`_predict` (run one batch); everything else is here, once. `hfapps.tasks.register` makes it known to the
helpers, the command line, `hfapps evaluate`, `hfapps train`, `hfapps export` and `hfapps serve`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from accelerate.utils.memory import should_reduce_batch_size
from tqdm.auto import tqdm

from .. import models, runtimes
from ..errors import HfappsError, OutOfMemoryError, TaskMismatchError
from ..inference import onednn
from ..inference.batching import length_sorted_batches
from ..inference.devices import inference_context, resolve_device, resolve_dtype
from ..inference.inputs import check_text, chunked, shape_of
from . import call_options, samples
from .training import TaskTraining

if TYPE_CHECKING:
    import argparse

logger = logging.getLogger("hfapps")

#: How many batches' worth of a stream are read, sorted by length and run (and written) together.
STREAM_BATCHES = 8


class Task:
    """A loaded model for one task. Call it on one input, a list (results in input order) or an iterable (a stream)."""

    name: ClassVar[str]
    #: Other names `hfapps.load` takes for this task (the transformers pipeline names among them).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: The `hfapps` subcommand that runs it, or None for a task reached through another one's options.
    command: ClassVar[str | None] = None
    #: The model used when none is given: the checkpoint the transformers 4 pipeline used.
    default_model: ClassVar[str]
    #: The call options, a dataclass of `call_options.option` fields: checked on every call, the command's flags
    #: and the server's request schema.
    options: ClassVar[type] = call_options.NoOptions
    #: What this task adds to `hfapps train` (None: it cannot be trained by a recipe).
    training: ClassVar[type[TaskTraining] | None] = None
    #: What one input is called in messages ("text", "question").
    what: ClassVar[str] = "text"
    #: Inputs longer than the model's window are cut to fit (with a warning) rather than split.
    truncates: ClassVar[bool] = True
    #: A batch ends early where padding its shorter items would waste compute (`inference.batching`).
    splits_padded_batches: ClassVar[bool] = True
    #: The named strings one input is made of (question answering: question and context); () for one text. The
    #: server's request schema and a calibration file's columns follow it.
    input_fields: ClassVar[tuple[str, ...]] = ()
    #: The runtime `hfapps export` writes this task's models for ("onnx", "ctranslate2"); None: no export.
    export_format: ClassVar[str | None] = None
    #: The key of a result an export must reproduce to agree with its source model (None: the whole result).
    agreement_key: ClassVar[str | None] = None

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        device: str | int | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 32,
        max_batch_tokens: int | None = 32768,
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
        progress: bool | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.progress = progress
        self.trust_remote_code = trust_remote_code
        self.ref, self.config = models.resolve(model or self.default_model, trust_remote_code=trust_remote_code)
        self.meta = models.read_meta(self.ref)
        self.tokenizer = models.load_tokenizer(self.ref, trust_remote_code=trust_remote_code)
        self._build(allow_pickle=allow_pickle)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.ref.name!r}, device='{self.device}', dtype={self.dtype})"

    # -- what a task module provides ---------------------------------------------------------------

    def _build(self, *, allow_pickle: bool) -> None:
        """Load the model and make the pipeline(s) this task runs."""
        raise NotImplementedError

    def _predict(self, batch: list[Any], options: Any) -> list[Any]:
        """Run one batch of checked inputs with the call's options (an instance of `self.options`); return
        one result per input, in order."""
        raise NotImplementedError

    def _check(self, item: Any, index: int | None) -> Any:
        """Validate one input and return it in the form `_predict` takes."""
        return check_text(item, index, what=self.what)

    def _text_of(self, item: Any) -> str:
        """The text whose token length decides an input's batch."""
        return item

    @classmethod
    def variant(cls, options: dict[str, Any]) -> type[Task]:
        """The task that actually runs with these call options (classification with labels= is zero-shot)."""
        return cls

    @classmethod
    def option_infos(cls) -> list[call_options.OptionInfo]:
        """Every call option this task's command takes (its variants' included)."""
        return call_options.describe(cls.options)

    # -- what `hfapps export` asks of a task -------------------------------------------------------

    @classmethod
    def claims(cls, config: Any) -> int:
        """How surely a model with this config is one this task exports when no task is named: 0 not at all;
        the task that claims it most surely wins (a Marian model is translation before it is summarization)."""
        return 0

    @classmethod
    def export_auto_class(cls, config: Any) -> type:
        """The transformers auto class that loads this task's model for export (asked only of a task with an
        `export_format`)."""
        raise TaskMismatchError(f"{cls.name} declares an export format but no auto class to load its model with.")

    @classmethod
    def sample_inputs(cls) -> tuple[list[Any], dict[str, Any]]:
        """Inputs from hfapps' sample data that an export of this task is checked and measured on, and the call
        options they need."""
        return samples.column("sentiment.csv", "text")[: samples.CARD_TEXTS], {}

    @classmethod
    def calibration_inputs(cls, path: str | os.PathLike | None = None) -> tuple[list[Any], str]:
        """What int8 calibrates on (texts, or tuples of `input_fields`), and where it came from: the first rows of
        `path`, or hfapps' sample data other than what the export is measured on."""
        if path is None:
            return samples.calibration_texts(), samples.SAMPLE_DATA
        return samples.calibration_file(path, cls.input_fields, cls.name), os.fspath(path)

    def sample_options(self) -> dict[str, Any]:
        """Call options this loaded model needs to run `sample_inputs`, beyond theirs."""
        return {}

    # -- the command line: how a subcommand reads its inputs -------------------------------------

    @classmethod
    def add_input_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("texts", nargs="*", help="texts to run on (or use --input)")
        parser.add_argument("--text-column", default="text", help="column holding the text in --input")

    @classmethod
    def input_columns(cls, args: argparse.Namespace) -> tuple[str, ...]:
        """The columns of --input that the task reads."""
        return (args.text_column,)

    @classmethod
    def rows_from_arguments(cls, args: argparse.Namespace) -> list[dict[str, Any]]:
        """Input rows from the command line itself, when there is no --input."""
        if not args.texts:
            raise HfappsError(f"Give texts to {args.command}, or --input FILE.")
        return [{args.text_column: text} for text in args.texts]

    @classmethod
    def input_of(cls, row: dict[str, Any], args: argparse.Namespace) -> Any:
        """The task's input for one row."""
        return row[args.text_column]

    # -- shared machinery --------------------------------------------------------------------------

    @property
    def runtime(self) -> str:
        """What runs the model: "pytorch", "gguf" (PyTorch, de-quantized), or an export's "onnx"/"ctranslate2"."""
        exported = runtimes.runtime_of(self.meta)
        return exported["format"] if exported else "gguf" if self.ref.gguf_file else "pytorch"

    @property
    def precision(self) -> str:
        """The weights' number format: the dtype, or what an export runs as on this CPU (ONNX "int8"; a CTranslate2
        compute type such as "int8_float32")."""
        exported = runtimes.runtime_of(self.meta)
        engine = getattr(getattr(self, "exported", None), "engine", None)
        if engine is not None and getattr(engine, "compute_type", None):
            return str(engine.compute_type)
        if exported and exported.get("quantize", "none") != "none":
            return str(exported["quantize"])
        return str(self.dtype).replace("torch.", "")

    def _load(self, auto_class: type, *, allow_pickle: bool, **kwargs: Any):
        if runtimes.runtime_of(self.meta):  # an `hfapps export` folder
            return runtimes.load_model(self.ref, self.config, self.meta, auto_class, self.device)
        model = models.load_model(
            self.ref,
            auto_class,
            device=self.device,
            dtype=self.dtype,
            trust_remote_code=self.trust_remote_code,
            allow_pickle=allow_pickle,
            **kwargs,
        )
        if models.model_kind(self.config) == "encoder" and onednn.available(self.device, self.dtype):
            onednn.fuse_linear_layers(model)  # bias and GELU fused into the products (hfapps/inference/onednn.py)
        return model

    @property
    def max_input_tokens(self) -> int:
        """The longest input, in tokens, that the model takes in one piece."""
        limit = getattr(self.tokenizer, "model_max_length", None)
        if limit is None or limit > 1_000_000:
            limit = getattr(self.config, "max_position_embeddings", None) or getattr(self.config, "n_positions", 512)
        return int(limit or 512)

    def __call__(self, inputs: Any, **options: Any) -> Any:
        batch_size = options.pop("batch_size", None)
        if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise HfappsError(f"batch_size must be a positive integer, got {batch_size!r}.")
        options = call_options.check(self.options, options, task=self.name)
        if batch_size is not None:
            options["batch_size"] = batch_size
        shape = shape_of(inputs, what=f"{self.what}s")
        if shape == "single":
            return self._run([self._check(inputs, None)], options, show_progress=False)[0]
        if shape == "list":
            return self._run([self._check(item, i) for i, item in enumerate(inputs)], options)
        return self._stream(inputs, options)

    def _stream(self, inputs: Iterable[Any], options: dict[str, Any]) -> Iterator[Any]:
        total = len(inputs) if isinstance(inputs, Sized) else None
        with tqdm(total=total, desc=self.name, unit=self.what, disable=self.progress is False) as bar:
            offset = 0
            for chunk in chunked(inputs, STREAM_BATCHES * (options.get("batch_size") or self.batch_size)):
                checked = [self._check(item, offset + i) for i, item in enumerate(chunk)]
                offset += len(chunk)
                yield from self._run(checked, options, show_progress=False)
                bar.update(len(chunk))

    def _run(self, items: list[Any], options: dict[str, Any], show_progress: bool | None = None) -> list[Any]:
        if not items:
            return []
        texts = [self._text_of(item) for item in items]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]
        if self.truncates:
            self._warn_if_truncated(lengths)
        # The caller's dict is shared by every chunk of a stream: read it, never change it.
        batch_size = options.get("batch_size") or self.batch_size
        settings = self.options(**{k: v for k, v in options.items() if k != "batch_size"})
        batches = length_sorted_batches(
            lengths, batch_size, self.max_batch_tokens, split_padding=self.splits_padded_batches
        )
        if show_progress is None:
            show_progress = self.progress if self.progress is not None else len(batches) > 1 and sys.stderr.isatty()
        results: list[Any] = [None] * len(items)
        with (
            tqdm(total=len(items), desc=self.name, unit=self.what, disable=not show_progress) as bar,
            inference_context(self.device, self.dtype),
        ):
            for batch in batches:
                outputs = self._predict_fitting([items[i] for i in batch], settings)
                for index, output in zip(batch, outputs, strict=True):
                    results[index] = output
                bar.update(len(batch))
        return results

    def _predict_fitting(self, batch: list[Any], options: Any) -> list[Any]:
        """`_predict`, halving the batch (and later ones) when it does not fit in memory."""
        cap = getattr(self, "_batch_cap", None)
        if cap and len(batch) > cap:
            return [
                out
                for start in range(0, len(batch), cap)
                for out in self._predict_fitting(batch[start : start + cap], options)
            ]
        try:
            return self._predict(batch, options)
        except Exception as err:  # accelerate knows the out-of-memory messages of every backend, the CPU's too
            if not _out_of_memory(err):
                raise
            if len(batch) == 1:
                raise OutOfMemoryError(
                    f"A single {self.what} does not fit in memory on {self.device}. Use a smaller dtype "
                    "(dtype='bfloat16'), another device, or shorter inputs."
                ) from err
        # Retried only here, outside the except block: its traceback holds the failed batch's tensors.
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self._batch_cap = len(batch) // 2
        logger.warning(
            "Out of memory on a batch of %d %ss; continuing with batches of %d.", len(batch), self.what, self._batch_cap
        )
        return self._predict_fitting(batch, options)

    def _warn_if_truncated(self, lengths: list[int]) -> None:
        limit = self.max_input_tokens
        too_long = sum(1 for n in lengths if n + 2 > limit)
        if too_long:
            logger.warning(
                "%d of %d %ss are longer than %s's limit of %d tokens and were truncated to fit.",
                too_long,
                len(lengths),
                self.what,
                self.ref.name,
                limit,
            )


def _out_of_memory(err: Exception) -> bool:
    """accelerate knows the out-of-memory messages of every backend; oneDNN (CPU) reports a failed allocation
    for its kernels as "could not create a primitive"."""
    return (
        isinstance(err, torch.OutOfMemoryError)
        or should_reduce_batch_size(err)
        or (isinstance(err, RuntimeError) and "could not create a primitive" in str(err))
    )
