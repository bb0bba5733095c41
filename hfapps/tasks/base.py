"""What every task shares: loading, input checks, length-sorted batching, progress and result order.

A task module subclasses `Task` and fills in `_build` (make its pipeline) and `_predict` (run one
batch); everything else is here, once.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from .. import models
from ..errors import HfappsError
from ..inputs import check_text, chunked, shape_of
from ..runtime import inference_context, length_sorted_batches, resolve_device, resolve_dtype

logger = logging.getLogger("hfapps")

#: How many batches' worth of a stream are read, sorted by length and run (and written) together.
STREAM_BATCHES = 8


class Task:
    """A loaded model for one task. Call it on one input, a list (results in input order) or an iterable (a stream)."""

    name: ClassVar[str]
    #: The model used when none is given: the checkpoint the transformers 4 pipeline used.
    default_model: ClassVar[str]
    #: What one input is called in messages ("text", "question").
    what: ClassVar[str] = "text"
    #: Inputs longer than the model's window are cut to fit (with a warning) rather than split.
    truncates: ClassVar[bool] = True

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

    def _predict(self, batch: list[Any], options: dict[str, Any]) -> list[Any]:
        """Run one batch of checked inputs; return one result per input, in order."""
        raise NotImplementedError

    def _check(self, item: Any, index: int | None) -> Any:
        """Validate one input and return it in the form `_predict` takes."""
        return check_text(item, index, what=self.what)

    def _text_of(self, item: Any) -> str:
        """The text whose token length decides an input's batch."""
        return item

    # -- shared machinery --------------------------------------------------------------------------

    def _load(self, auto_class: type, *, allow_pickle: bool, **kwargs: Any):
        return models.load_model(
            self.ref,
            auto_class,
            device=self.device,
            dtype=self.dtype,
            trust_remote_code=self.trust_remote_code,
            allow_pickle=allow_pickle,
            **kwargs,
        )

    @property
    def max_input_tokens(self) -> int:
        """The longest input, in tokens, that the model takes in one piece."""
        limit = getattr(self.tokenizer, "model_max_length", None)
        if limit is None or limit > 1_000_000:
            limit = getattr(self.config, "max_position_embeddings", None) or getattr(self.config, "n_positions", 512)
        return int(limit)

    def __call__(self, inputs: Any, **options: Any) -> Any:
        shape = shape_of(inputs, what=f"{self.what}s")
        if shape == "single":
            return self._run([self._check(inputs, None)], options, show_progress=False)[0]
        if shape == "list":
            return self._run([self._check(item, i) for i, item in enumerate(inputs)], options)
        return self._stream(inputs, options)

    def _stream(self, inputs: Iterable[Any], options: dict[str, Any]) -> Iterator[Any]:
        total = len(inputs) if hasattr(inputs, "__len__") else None
        with tqdm(total=total, desc=self.name, unit=self.what, disable=self.progress is False) as bar:
            offset = 0
            for chunk in chunked(inputs, STREAM_BATCHES * self.batch_size):
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
        batch_size = options.pop("batch_size", None) or self.batch_size
        batches = length_sorted_batches(lengths, batch_size, self.max_batch_tokens)
        if show_progress is None:
            show_progress = self.progress if self.progress is not None else len(batches) > 1 and sys.stderr.isatty()
        results: list[Any] = [None] * len(items)
        with tqdm(total=len(items), desc=self.name, unit=self.what, disable=not show_progress) as bar:
            with inference_context(self.device, self.dtype):
                for batch in batches:
                    outputs = self._predict_fitting([items[i] for i in batch], options)
                    for index, output in zip(batch, outputs, strict=True):
                        results[index] = output
                    bar.update(len(batch))
        return results

    def _predict_fitting(self, batch: list[Any], options: dict[str, Any]) -> list[Any]:
        """`_predict`, halving the batch (and later ones) when it does not fit in memory."""
        cap = getattr(self, "_batch_cap", None)
        if cap and len(batch) > cap:
            return [out for start in range(0, len(batch), cap)
                    for out in self._predict_fitting(batch[start:start + cap], options)]
        try:
            return self._predict(batch, dict(options))
        except (torch.OutOfMemoryError, RuntimeError) as err:
            if not isinstance(err, torch.OutOfMemoryError) and "out of memory" not in str(err).lower():
                raise
            if len(batch) == 1:
                raise HfappsError(
                    f"A single {self.what} does not fit in memory on {self.device}. Use a smaller dtype "
                    "(dtype='bfloat16'), another device, or shorter inputs.") from err
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self._batch_cap = len(batch) // 2
            logger.warning("Out of memory on a batch of %d %ss; continuing with batches of %d.",
                           len(batch), self.what, self._batch_cap)
            return self._predict_fitting(batch, options)

    def _warn_if_truncated(self, lengths: list[int]) -> None:
        limit = self.max_input_tokens
        too_long = sum(1 for n in lengths if n + 2 > limit)
        if too_long:
            logger.warning(
                "%d of %d %ss are longer than %s's limit of %d tokens and were truncated to fit.",
                too_long, len(lengths), self.what, self.ref.name, limit,
            )
