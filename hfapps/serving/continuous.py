"""Continuous batching for a served `chat` or `text-generation` model: requests that arrive while others decode
join the running batch at its next step, rather than wait for it to finish.

It is transformers' own `ContinuousBatchingManager` (one per served model, its KV cache sized from `ServeConfig`,
started once the model is loaded, stopped after the server's drain). Each request streams: the manager hands over
its cumulative tokens at every step, on the event loop; the new ones go through the same `RowStreamer` as a
`generate` batch, so stop strings, the end token and the per-request limit end a row exactly as they do there (a
stop string is never shown, even split across tokens), and the manager is told to drop the row at once. A client
that leaves mid-stream frees its slot at the next step (`cancel`).

What the manager cannot do per request goes through the server's dynamic batcher instead (`accepts`):
- sampling: the manager samples or not for the whole batch (one `do_sample`), from one random generator seeded
  once, so neither a greedy row beside a sampled one nor a request's `seed` can be honoured;
- `repetition_penalty` and a JSON schema (`response_format`): the manager takes no per-request logits processor;
- a CTranslate2 export (its batches cannot take a row once they run), and a prompt plus its new tokens longer
  than the whole cache.
While such a batch decodes on the same model the manager pauses (`paused`), so the two never share the weights.

The model's linear layers go back to plain products (`hfapps.inference.packing` packs a weight for each new row
count, and a running batch changes its row count at every prompt that joins): measured on SmolLM2-135M with 16
streams, that halves the server's memory (1.5 GB against 3.0 GB) and the first token's wait, at the same tokens/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Iterator
from typing import Any

import torch

from ..errors import HfappsError
from ..inference.decoding import CANCELLED, Row, RowStreamer, sampling

logger = logging.getLogger("hfapps.serve")

#: Attention implementations the manager runs as they are (it would switch any other one for the whole model).
_ATTENTION = ("sdpa", "paged|eager")
#: How long a cancelled request's handler stays registered: the manager may still deliver a step it had begun.
_LATE_STEP_SECONDS = 5.0


class ContinuousBatcher:
    """The continuous-batching decoder of one loaded language-model task (`hfapps.tasks.generation`)."""

    def __init__(self, task: Any, *, num_blocks: int, page_size: int, max_batch_tokens: int, max_requests: int) -> None:
        from transformers import GenerationConfig
        from transformers.generation.configuration_utils import ContinuousBatchingConfig

        self.task = task
        _unpack_linear_layers(task.model)
        self.capacity = num_blocks * page_size  # tokens the cache holds, all requests together
        self.max_requests = max_requests
        config: GenerationConfig = copy.deepcopy(task.model.generation_config)
        config.update(  # greedy, as a `generate` batch that does not sample (each request sets its own limit)
            **sampling(), eos_token_id=sorted(task.end_ids) or None, pad_token_id=task.tokenizer.pad_token_id
        )
        self.manager = task.model.init_continuous_batching(
            generation_config=config,
            continuous_batching_config=ContinuousBatchingConfig(
                num_blocks=num_blocks,
                page_size=page_size,
                max_batch_tokens=max_batch_tokens,
                max_requests_per_batch=max_requests,
                seed=0,
            ),
        )
        self._rows: dict[str, tuple[Row, asyncio.Future]] = {}
        self.served = 0  # requests answered through the running batch (the tests read it)
        self.freed = 0  # requests whose client left, their slot given back

    @staticmethod
    def supports(task: Any) -> str | None:
        """None when `task` can decode continuously, else why not."""
        if getattr(task, "ct2", None) is not None or getattr(task, "model", None) is None:
            return "a CTranslate2 export cannot add a row to a batch that runs"
        attention = getattr(task.model.config, "_attn_implementation", None)
        if attention not in _ATTENTION:
            return f"its attention implementation {attention!r} is not one of {', '.join(_ATTENTION)}"
        if not hasattr(task.model, "init_continuous_batching"):
            return "this transformers has no continuous batching"
        return None

    def start(self) -> None:
        with torch.inference_mode():  # the manager's thread runs in its starter's inference mode
            self.manager.start()

    def stop(self, timeout: float | None = 30) -> None:
        """Finish the requests that run (for at most `timeout` seconds), then stop the manager's thread."""
        if self.manager.is_running():
            self.manager.stop(block=True, timeout=timeout)

    def describe(self) -> dict[str, int]:
        """What `GET /v1/models` shows of it: requests decoding now, answered, and freed by a client that left."""
        return {
            "running": len(self._rows),
            "served": self.served,
            "freed": self.freed,
            "max_requests": self.max_requests,
            "cache_tokens": self.capacity,
        }

    def accepts(self, prompts: list[Any], options: dict[str, Any]) -> bool:
        """Whether these checked prompts, with these options, can join the running batch (see the module's doc)."""
        if not self.manager.is_running() or options.get("json_schema") or options.get("repetition_penalty"):
            return False
        settings = sampling(options.get("temperature"), options.get("top_p"), options.get("top_k"))
        if settings["do_sample"]:
            return False
        return all(len(p.ids) + p.max_new_tokens <= self.capacity for p in prompts)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the manager between two steps while another caller uses the model (a dynamic batch)."""
        if not self.manager.is_running():
            yield
            return
        with self.manager.pause():
            yield

    async def submit(self, prompt: Any, options: dict[str, Any]) -> dict[str, Any]:
        """Decode one checked prompt in the running batch; its result as the task returns it. Its new text goes to
        `prompt.on_delta` as it decodes."""
        loop = asyncio.get_running_loop()
        row = Row(len(prompt.ids), prompt.max_new_tokens, tuple(options.get("stop") or ()), prompt.on_delta)
        row.cancelled = prompt.cancelled
        streamer = RowStreamer(self.task.tokenizer, [row], self.task.end_ids)
        done: asyncio.Future[None] = loop.create_future()
        ident = self.manager.add_request(
            list(prompt.ids),
            max_new_tokens=row.max_new_tokens,
            streaming=True,
            eos_token_id=sorted(self.task.end_ids) or None,
        )
        if ident is None:
            raise HfappsError("The server is shutting down and takes no new requests; send it to another one.")
        self._rows[ident] = (row, done)

        def on_output(output: Any) -> None:  # on the event loop, once per step of this request
            if done.done():
                return
            if output.error is not None:
                self._rows.pop(ident, None)
                done.set_exception(HfappsError(f"Decoding failed: {output.error}"))
                return
            for token in output.generated_tokens[len(row.ids) :]:
                if streamer.add(row, int(token)):
                    break
            if not row.done and output.is_finished():
                streamer.end()
            if row.done:
                if not output.is_finished():  # a stop string: the manager would go on to its limit
                    self.manager.cancel_request(ident)
                self._rows.pop(ident, None)
                done.set_result(None)

        self.manager.register_result_handler(ident, on_output)
        try:
            await done
        except asyncio.CancelledError:
            self.cancel(ident)
            raise
        self.served += 1
        return self.task._result(row)

    def cancel(self, ident: str) -> None:
        """Give a request's slot back now (its client left); its waiter gets the tokens so far, "cancelled"."""
        entry = self._rows.pop(ident, None)
        if entry is None:
            return
        row, done = entry
        self.manager.cancel_request(ident)  # the manager sends nothing more for it, not even a last message
        self.freed += 1
        if row.finish_reason is None:
            row.finish_reason = CANCELLED
        if not done.done():
            done.set_result(None)
        asyncio.get_running_loop().call_later(_LATE_STEP_SECONDS, self._forget, ident)
        logger.info("Continuous batching: a request left; its slot is free (%d running).", len(self._rows))

    def cancel_prompt(self, prompt: Any) -> None:
        """`cancel` for the request decoding `prompt`, if any."""
        for ident, (row, _) in list(self._rows.items()):
            if row.cancelled is prompt.cancelled:
                self.cancel(ident)

    def _forget(self, ident: str) -> None:
        router = self.manager.output_router
        with router._lock:
            router.result_handlers.pop(ident, None)


def _unpack_linear_layers(model: Any) -> None:
    """Undo `hfapps.inference.packing.pack_linear_layers` on `model` (each layer's own `forward` again)."""
    for module in model.modules():
        if hasattr(module, "_hfapps_packed_key") and "forward" in vars(module):
            del module.forward
            module._hfapps_packed = None
