"""Dynamic batching for the server: concurrent requests for one model, gathered into one helper call.

A request's inputs wait at most `max_wait_ms` for others to join them, up to `max_batch_size` inputs; the
gathered inputs (of requests with the same options) then go to the task helper as one list, which sorts them
by length into token-budgeted batches, and each request gets its own results back, in its own order. The
model runs on one worker thread per model, off the event loop, so a long batch never blocks `/health` or the
requests of other models.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

logger = logging.getLogger("hfapps.serve")


@dataclass
class _Pending:
    items: list[Any]
    options: dict[str, Any]
    future: asyncio.Future = field(repr=False)

    @property
    def key(self) -> str:
        return json.dumps(self.options, sort_keys=True)


class Batcher:
    """Runs `run(items, **options) -> results` for many concurrent callers, in gathered batches."""

    def __init__(
        self, run: Callable[..., list[Any]], *, max_wait_ms: float = 5.0, max_batch_size: int = 64, name: str = "model"
    ) -> None:
        self._run = run
        self.max_wait = max_wait_ms / 1000
        self.max_batch_size = max(1, max_batch_size)
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hfapps-{name}")
        self.batches = 0  # how many helper calls ran (the tests and the benchmark read it)

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self, timeout: float | None = 30) -> None:
        """Finish what is queued (for at most `timeout` seconds), then stop."""
        if self._queue is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout)
            except asyncio.TimeoutError:
                logger.warning("Stopping with requests still running after %s s.", timeout)
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        """The results for `items` (already checked), in their order."""
        assert self._queue is not None, "Batcher.start() first"
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(items, options, future))
        return await future

    async def _serve(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            gathered = [await self._queue.get()]
            size, deadline = len(gathered[0].items), loop.time() + self.max_wait
            while size < self.max_batch_size:
                try:
                    more = await asyncio.wait_for(self._queue.get(), max(0.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    break
                gathered.append(more)
                size += len(more.items)
            groups: dict[str, list[_Pending]] = {}
            for pending in gathered:
                groups.setdefault(pending.key, []).append(pending)
            for group in groups.values():
                await self._run_group(group)
            for _ in gathered:
                self._queue.task_done()

    async def _run_group(self, group: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        items = [item for pending in group for item in pending.items]
        try:
            self.batches += 1
            results = await loop.run_in_executor(self._executor, lambda: self._run(items, **group[0].options))
        except InputError as err:
            if len(group) == 1:
                _settle(group[0], error=err)
                return
            for pending in group:  # one request's bad input must not fail the others: run each alone
                await self._run_group([pending])
            return
        except Exception as err:  # noqa: BLE001 - handed to the waiting requests, which turn it into their response
            for pending in group:
                _settle(pending, error=err)
            return
        start = 0
        for pending in group:
            _settle(pending, result=results[start : start + len(pending.items)])
            start += len(pending.items)


def _settle(pending: _Pending, *, result: Any = None, error: BaseException | None = None) -> None:
    if pending.future.done():  # the caller went away
        return
    if error is not None:
        pending.future.set_exception(error)
    else:
        pending.future.set_result(result)
