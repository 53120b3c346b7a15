"""Appending accepted webhooks to `wa.webhooks`, many concurrent requests per Redis round trip.

A group commit: the first request to arrive sends its entry at once; requests arriving while
that round trip is in flight wait and go together in the next one (`Bus.append_many`, one
pipelined XADD each). Every request still learns its own entry's outcome, and is answered 200
only after Redis has answered for its entry — batching changes the number of round trips, not
the durability promise. Under no load a batch is one entry and nothing waits.

No publish-once check here: a body WhatsApp sends again is appended again, and the worker
makes it a no-op (its inbox by event id, the archive by body hash, messages by WhatsApp id,
statuses by (id, status), all durable). The check's Lua call and marker key per webhook cost a
tenth of the request path's throughput in a burst, and its markers (one per webhook for
`PUBLISH_DEDUPE_SECONDS`) were most of Redis's memory under load.

Time limit: every entry must be answered for within `timeout` seconds of its `append`. One
deadline per batch enforces it — the batch's oldest entry's, the earliest of them — instead
of a timer per request (and the appender's own Redis client reads without redis-py's
per-reply socket timeout, `appender_bus`): timers were ~10 % of the request path's CPU.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError

from baton_shared.settings import BusSettings
from baton_shared.streams.bus import Bus

Item = tuple[str, dict[str, str]]
Pending = tuple[Item, "asyncio.Future[str]", float]


def appender_bus(settings: BusSettings) -> Bus:
    """A bus of its own for the appender: no socket timeout on each reply, because every batch
    has a deadline of its own (a cancelled round trip drops its connection, so nothing is
    left half-read)."""
    redis = Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=None)
    return Bus(redis, prefix=settings.redis_prefix, maxlen=settings.stream_maxlen)


class WebhookAppender:
    """Appends entries through `bus`, coalescing concurrent calls.

    Args:
        bus: the bus (its Redis pool, key prefix and trimming policy are used).
        timeout: seconds an `append` may take; later it raises `TimeoutError`.
        max_batch: most entries sent in one round trip.
    """

    def __init__(self, bus: Bus, *, timeout: float = 5.0, max_batch: int = 256) -> None:
        self.bus = bus
        self.timeout = timeout
        self.max_batch = max_batch
        self._pending: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, stream: str, fields: dict[str, str]) -> str:
        """Append `fields` to `stream`; the entry id. Raises what Redis raised, or
        `TimeoutError`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        self._pending.append(((stream, fields), future, loop.time() + self.timeout))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Send waiting entries, one batch per round trip, until none is waiting."""
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                # Entries wait in arrival order: the first one's deadline is the earliest.
                async with asyncio.timeout_at(batch[0][2]):
                    results = await self.bus.append_many([item for item, _, _ in batch])
            except BaseException as exc:  # every waiter learns; cancellation included
                for _, future, _ in batch:
                    if not future.done():
                        future.set_exception(_as_error(exc))
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future, _), result in zip(batch, results, strict=True):
                if not future.done():  # done: its request was cancelled
                    future.set_result(result)

    async def aclose(self) -> None:
        """Close the bus's connections (call once no request can append any more)."""
        await self.bus.aclose()


def _as_error(exc: BaseException) -> BaseException:
    """What a waiting request is told when its batch failed as a whole."""
    if isinstance(exc, asyncio.CancelledError):
        return RedisError("cancelled")
    if isinstance(exc, RedisError | OSError | TimeoutError):
        return exc
    return RedisError(f"{type(exc).__name__}: {exc}")
