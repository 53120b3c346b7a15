"""Group commit: requests made while a batch runs are served together by the next batch.

Hundreds of concurrent sends each need the same small steps (commit `calling`, take a rate
permit, record the answer). A `Coalescer` runs one batch at a time; whatever callers ask
while it runs waits and goes into the next one, so a busy sender pays one round trip per
batch instead of one per message, and an idle one pays no extra latency.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class Coalescer(Generic[In, Out]):
    """Runs `batch(items)` for requests arriving together; `single(item)` when a batch fails.

    `batch` returns one result per item, in order. When it raises, each item of the batch is
    retried alone through `single`, so one bad item fails only its own caller.
    """

    def __init__(
        self,
        batch: Callable[[Sequence[In]], Awaitable[Sequence[Out]]],
        single: Callable[[In], Awaitable[Out]],
        *,
        max_batch: int = 256,
    ) -> None:
        self.batch = batch
        self.single = single
        self.max_batch = max_batch
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        """Queue `item` for the next batch and wait for its result."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        await asyncio.sleep(0)  # let requests made in the same loop turn join
        while self._pending:
            taken = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            await self._serve(taken)

    async def _serve(self, taken: list[tuple[In, asyncio.Future[Out]]]) -> None:
        items = [item for item, _ in taken]
        try:
            results = list(await self.batch(items)) if len(items) > 1 else []
        except Exception:
            log.warning(
                "batch of %d failed; serving its items one by one", len(items), exc_info=True
            )
            results = []
        if len(results) == len(items):
            for (_, future), result in zip(taken, results, strict=True):
                if not future.done():
                    future.set_result(result)
            return
        for item, future in taken:
            try:
                result = await self.single(item)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
