"""Appending accepted webhooks to `wa.webhooks`, many concurrent requests per Redis round trip.

A group commit: the first request to arrive sends its entry at once; requests arriving while
that round trip is in flight wait and go together in the next one, through
`Bus.publish_many` (one pipeline of the bus's publish-once script, so a byte-identical
redelivery is still appended once). Every request still learns its own entry's outcome, and
is answered 200 only after Redis has answered for its entry — batching changes the number of
round trips, not the durability promise. Under no load a batch is one entry and nothing waits.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

from baton_shared.events import Event
from baton_shared.streams.bus import Bus, entry_fields

Item = tuple[str, str, dict[str, str]]
Pending = tuple[Item, "asyncio.Future[str | None]"]


class WebhookAppender:
    """Appends events through `bus` exactly like `Bus.publish`, coalescing concurrent calls.

    Args:
        bus: the bus (its Redis pool, key prefix, MAXLEN and dedupe lifetime are used).
        max_batch: most entries sent in one round trip.
    """

    def __init__(self, bus: Bus, *, max_batch: int = 256) -> None:
        self.bus = bus
        self.max_batch = max_batch
        self._pending: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, event: Event) -> str | None:
        """Append `event` to its stream once per event id; the entry id, or None when an
        entry with that event id was already appended. Raises what Redis raised."""
        item = (event.stream, str(event.event_id), entry_fields(event))
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Send waiting entries, one batch per round trip, until none is waiting."""
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                results = await self.bus.publish_many([item for item, _ in batch])
            except BaseException as exc:  # every waiter learns; cancellation included
                for _, future in batch:
                    if not future.done():
                        future.set_exception(_as_error(exc))
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # done: its request gave up (timeout)
                    future.set_result(result)


def _as_error(exc: BaseException) -> BaseException:
    """What a waiting request is told when its batch failed as a whole."""
    if isinstance(exc, asyncio.CancelledError):
        return RedisError("cancelled")
    if isinstance(exc, RedisError | OSError):
        return exc
    return RedisError(f"{type(exc).__name__}: {exc}")
