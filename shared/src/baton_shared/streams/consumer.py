"""Consuming a stream with a consumer group: ack after the handler's commit, reclaim from dead
consumers, dead-letter after repeated failures.

Delivery is at least once. A handler must be idempotent (see `baton_shared.db.inbox`): it may
see an entry again after a crash between its commit and the acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.exceptions import RedisError, ResponseError

from baton_shared.events import Event, UnknownEventError, parse_event
from baton_shared.observability import metrics
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, Entry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Facts about one delivery of an entry to this consumer.

    Attributes:
        stream: the stream name (without prefix).
        entry_id: the Redis entry id.
        count: how many times the entry has been delivered to this group, this one included.
    """

    stream: str
    entry_id: str
    count: int


Handler = Callable[[Event, Delivery], Awaitable[None]]


class PoisonEntryError(Exception):
    """The entry cannot be parsed; retrying will not help."""


class Consumer:
    """Runs one handler over one stream as one member of a consumer group.

    With `concurrency` 1 (the default) entries are handled one at a time, in stream order.
    A larger value handles up to that many entries at once: only for streams where the
    producer already keeps per-conversation order (the agent's turns: one in flight per
    conversation), never to speed up a stream whose order matters.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        stream: str,
        group: str,
        name: str,
        handler: Handler,
        batch: int = 64,
        block_ms: int = 1000,
        reclaim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        concurrency: int = 1,
    ) -> None:
        self.bus = bus
        self.stream = stream
        self.group = group
        self.name = name
        self.handler = handler
        self.batch = batch
        self.block_ms = block_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.max_deliveries = max_deliveries
        self.concurrency = max(1, concurrency)
        self.running = False
        self._key = bus.key(stream)
        self._next_reclaim = 0.0
        self._inflight: set[asyncio.Task[None]] = set()

    async def ensure_group(self) -> None:
        """Create the group at the start of the stream (and the stream) if missing."""
        try:
            await self.bus.redis.xgroup_create(self._key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; Redis outages are waited out, never fatal."""
        self.running = True
        try:
            while not stop.is_set():
                try:
                    await self.ensure_group()
                    while not stop.is_set():
                        await self.step()
                except (RedisError, OSError) as exc:
                    log.warning("redis unavailable for %s/%s: %s", self.stream, self.group, exc)
                    await _wait(stop, 1.0)
        finally:
            if self._inflight:  # let entries in hand finish (the caller may cancel us)
                await asyncio.gather(*self._inflight, return_exceptions=True)
            self.running = False

    async def step(self) -> int:
        """Reclaim idle entries when due, then read and handle one batch; returns entries seen."""
        handled = 0
        if time.monotonic() >= self._next_reclaim:
            handled += await self.reclaim()
            self._next_reclaim = time.monotonic() + self.reclaim_idle_ms / 2000
        free = await self._free_slots()
        reply: Any = await self.bus.redis.xreadgroup(
            self.group,
            self.name,
            {self._key: ">"},
            count=min(self.batch, free),
            block=self.block_ms,
        )
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                await self._dispatch(Entry(entry_id, fields), count=1)
                handled += 1
        return handled

    async def _free_slots(self) -> int:
        """How many entries may be taken now; waits while every slot is busy."""
        while len(self._inflight) >= self.concurrency:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
        return self.concurrency - len(self._inflight) if self.concurrency > 1 else self.batch

    async def _dispatch(self, entry: Entry, *, count: int) -> None:
        """Handle in line (concurrency 1: stream order), or in a task when slots allow."""
        if self.concurrency == 1:
            await self.process(entry, count=count)
            return
        await self._free_slots()
        task = asyncio.create_task(self.process(entry, count=count))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def reclaim(self) -> int:
        """Take over entries another consumer left pending longer than the idle time."""
        start = "0-0"
        reclaimed = 0
        while True:
            result = await self.bus.redis.xautoclaim(
                self._key, self.group, self.name, self.reclaim_idle_ms, start, count=self.batch
            )
            start, entries = result[0], result[1]
            if entries:
                counts = await self._delivery_counts([e[0] for e in entries])
            for entry_id, fields in entries:
                if fields is None:  # deleted by trimming while pending
                    await self.bus.redis.xack(self._key, self.group, entry_id)
                    continue
                reclaimed += 1
                metrics.RECLAIMED.labels(self.stream, self.group).inc()
                await self._dispatch(Entry(entry_id, fields), count=counts.get(entry_id, 2))
            if start in ("0-0", b"0-0"):
                return reclaimed

    async def _delivery_counts(self, entry_ids: list[str]) -> dict[str, int]:
        pending = await self.bus.redis.xpending_range(
            self._key, self.group, min=min(entry_ids), max=max(entry_ids), count=len(entry_ids) * 4
        )
        return {str(p["message_id"]): int(p["times_delivered"]) for p in pending}

    async def process(self, entry: Entry, *, count: int) -> None:
        """Handle one entry: ack on success, remember the error on failure, DLQ when exhausted."""
        delivery = Delivery(self.stream, entry.entry_id, count)
        failures = self.bus.key(names.failure_log(self.stream, self.group))
        if count > self.max_deliveries:
            last = str(await self.bus.redis.hget(failures, entry.entry_id) or "")
            await self.dead_letter(entry, last or f"gave up after {count - 1} deliveries", count)
            return
        started = time.perf_counter()
        try:
            event = _parse(entry)
            if event is None:  # a type this version does not know: not ours to handle
                await self._ack(entry.entry_id)
                return
            await self.handler(event, delivery)
        except PoisonEntryError as exc:
            await self.dead_letter(entry, str(exc), count)
            return
        except Exception as exc:  # the handler's failure must never stop the stream
            metrics.HANDLER_FAILURES.labels(self.stream, self.group).inc()
            reason = f"{type(exc).__name__}: {exc}"[:2000]
            log.exception(
                "handler failed on %s %s (delivery %d)", self.stream, entry.entry_id, count
            )
            if count >= self.max_deliveries:
                await self.dead_letter(entry, reason, count)
            else:
                await self.bus.redis.hset(failures, entry.entry_id, reason)
            return
        metrics.HANDLED.labels(self.stream, self.group).inc()
        metrics.HANDLER_SECONDS.labels(self.stream, self.group).observe(
            time.perf_counter() - started
        )
        await self._ack(entry.entry_id)
        if count > 1:
            await self.bus.redis.hdel(failures, entry.entry_id)

    async def dead_letter(self, entry: Entry, error: str, count: int) -> None:
        """Move an entry to `<stream>.dlq` with the error, and acknowledge it, atomically."""
        fields: dict[Any, Any] = {
            **entry.fields,
            "dlq_stream": self.stream,
            "dlq_group": self.group,
            "dlq_entry_id": entry.entry_id,
            "dlq_deliveries": str(count),
            "dlq_error": error,
        }
        async with self.bus.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.bus.key(names.dlq(self.stream)),
                fields,
                maxlen=self.bus.maxlen,
                approximate=True,
            )
            pipe.xack(self._key, self.group, entry.entry_id)
            pipe.hdel(self.bus.key(names.failure_log(self.stream, self.group)), entry.entry_id)
            await pipe.execute()
        metrics.DEAD_LETTERED.labels(self.stream, self.group).inc()
        log.error(
            "dead-lettered %s %s after %d deliveries: %s", self.stream, entry.entry_id, count, error
        )

    async def _ack(self, entry_id: str) -> None:
        await self.bus.redis.xack(self._key, self.group, entry_id)


def _parse(entry: Entry) -> Event | None:
    fields = entry.fields
    try:
        return parse_event(fields["event_type"], int(fields["schema_version"]), fields["body"])
    except UnknownEventError:
        log.info("ignoring unknown event %s", fields.get("event_type"))
        return None
    except (KeyError, ValueError, ValidationError) as exc:
        raise PoisonEntryError(f"unparseable entry: {type(exc).__name__}: {exc}"[:2000]) from exc


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
