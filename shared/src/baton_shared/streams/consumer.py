"""Consuming a stream with a consumer group: ack after the handler's commit, reclaim from dead
consumers, dead-letter after repeated failures.

An outage is not a failure of the entry (`baton_shared.streams.outages`): a handler that fails
because PostgreSQL or Redis is unreachable leaves its entry pending without counting towards
dead-lettering (it is retried when reclaimed, however many deliveries that takes), and the
consumer backs off (0.5 s doubling to `MAX_OUTAGE_PAUSE`) before reading more, instead of
running through the stream while nothing can succeed. A crash during a retry counts again.
An ordered consumer (concurrency 1) then handles the entries it was left holding, in stream
order, before it reads new ones: otherwise later entries would be handled before them.

Delivery is at least once. A handler must be idempotent (see `baton_shared.db.inbox`): it may
see an entry again after a crash between its commit and the acknowledgement.

Observability: each entry is handled inside a CONSUMER span that continues the event's
`traceparent` (events created by the handler become its children), and produces exactly one
line on the `baton.events` logger with `outcome` = ok | failed | dead_lettered | ignored
(INFO for ok and ignored, WARNING for a failure that will be retried, ERROR for dead letters),
`duration_ms`, the event's ids and its trace id. Metrics: `baton_shared.observability.metrics`.
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
from baton_shared.events.envelope import trace_id_of
from baton_shared.observability import logs, metrics, tracing
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, Entry
from baton_shared.streams.outages import is_outage

log = logging.getLogger(__name__)
events_log = logging.getLogger(logs.EVENTS_LOGGER)

# The failure log's mark on an entry whose last failure was an outage (see the docstring).
OUTAGE_MARK = "outage: "
MAX_OUTAGE_PAUSE = 5.0  # seconds between reads while every handling meets an outage


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
        log_events: bool = True,
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
        self.log_events = log_events
        self.running = False
        self._key = bus.key(stream)
        self._next_reclaim = 0.0
        self._inflight: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self.outage_pause = 0.0  # seconds to wait before the next read (0: no outage seen)
        self._own_backlog = False  # an outage left entries with us: handle them first
        # Labelled children looked up once: `labels()` per event is measurable at high rates.
        self._delivery_delay = metrics.DELIVERY_DELAY.labels(stream, group)
        self._handled = metrics.HANDLED.labels(stream, group)
        self._handler_seconds = metrics.HANDLER_SECONDS.labels(stream, group)

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
                        if self.outage_pause:
                            await _wait(stop, self.outage_pause)
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
        if self._own_backlog:
            return handled + await self.redo_own_backlog()
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
        # Not `asyncio.wait(self._inflight)`: that adds and removes a callback on every task
        # in flight at each call, quadratic work with thousands of slots.
        while len(self._inflight) >= self.concurrency:
            self._slot_freed.clear()
            await self._slot_freed.wait()
        return self.concurrency - len(self._inflight) if self.concurrency > 1 else self.batch

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slot_freed.set()

    async def _dispatch(self, entry: Entry, *, count: int) -> None:
        """Handle in line (concurrency 1: stream order), or in a task when slots allow."""
        if self.concurrency == 1:
            await self.process(entry, count=count)
            return
        await self._free_slots()
        task = asyncio.create_task(self.process(entry, count=count))
        self._inflight.add(task)
        task.add_done_callback(self._finished)

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
        """How often each of these pending entries was delivered, in one round trip.

        One XPENDING per id: a single range from the least id to the greatest would be
        bounded by comparing ids as text, where "5-10" sorts before "5-9" (entries appended
        in one millisecond), and its count would fall short when other pending entries lie
        in between; an entry missed so was told it was on its second delivery every time,
        and a poison entry was retried for ever instead of dead-lettered."""
        async with self.bus.redis.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.xpending_range(self._key, self.group, min=entry_id, max=entry_id, count=1)
            replies = await pipe.execute()
        return {str(p["message_id"]): int(p["times_delivered"]) for reply in replies for p in reply}

    async def process(self, entry: Entry, *, count: int) -> None:
        """Handle one entry: ack on success, remember the error on failure, DLQ when exhausted."""
        started = time.perf_counter()
        delivery = Delivery(self.stream, entry.entry_id, count)
        failures = self.bus.key(names.failure_log(self.stream, self.group))
        if count > 1:
            last = str(await self.bus.redis.hget(failures, entry.entry_id) or "")
            if last.startswith(OUTAGE_MARK):  # this try counts if it dies: unmark first
                await self.bus.redis.hdel(failures, entry.entry_id)
            elif count > self.max_deliveries:
                error = last or f"gave up after {count - 1} deliveries"
                await self.dead_letter(entry, error, count)
                self._log(entry, None, "dead_lettered", started, count, error)
                return
        try:
            event = _parse(entry)
        except PoisonEntryError as exc:
            await self.dead_letter(entry, str(exc), count)
            self._log(entry, None, "dead_lettered", started, count, str(exc))
            return
        if event is None:  # a type this version does not know: not ours to handle
            metrics.IGNORED.labels(self.stream, self.group).inc()
            await self._ack(entry.entry_id)
            self._log(entry, None, "ignored", started, count)
            return
        self._delivery_delay.observe(max(0.0, time.time() - event.occurred_at.timestamp()))
        with tracing.consume_span(
            self.stream,
            self.group,
            event.traceparent,
            {
                "messaging.message.id": str(event.event_id),
                "messaging.redis.entry_id": entry.entry_id,
                "baton.event_type": event.event_type,
                "baton.conversation_id": event.conversation_id or "",
                "baton.delivery": count,
            },
        ) as span:
            try:
                await self.handler(event, delivery)
            except PoisonEntryError as exc:
                tracing.mark_failed(span, exc)
                await self.dead_letter(entry, str(exc), count)
                self._log(entry, event, "dead_lettered", started, count, str(exc))
                return
            except Exception as exc:  # the handler's failure must never stop the stream
                tracing.mark_failed(span, exc)
                metrics.HANDLER_FAILURES.labels(self.stream, self.group).inc()
                reason = f"{type(exc).__name__}: {exc}"[:2000]
                if is_outage(exc):  # not the entry's fault: retried, never dead-lettered
                    self.note_outage()
                    await self.bus.redis.hset(failures, entry.entry_id, OUTAGE_MARK + reason)
                    self._log(entry, event, "failed", started, count, reason)
                    return
                if count >= self.max_deliveries:
                    await self.dead_letter(entry, reason, count)
                    outcome = "dead_lettered"
                else:
                    await self.bus.redis.hset(failures, entry.entry_id, reason)
                    outcome = "failed"
                self._log(entry, event, outcome, started, count, reason, exc_info=True)
                return
        elapsed = time.perf_counter() - started
        self.outage_pause = 0.0
        self._handled.inc()
        self._handler_seconds.observe(elapsed)
        await self._ack(entry.entry_id)
        if count > 1:
            await self.bus.redis.hdel(failures, entry.entry_id)
        self._log(entry, event, "ok", started, count)

    def note_outage(self) -> None:
        """A handling met an outage: wait longer before the next read (reset by a success),
        and (ordered consumers) handle what it left with us before anything newer."""
        self.outage_pause = min(MAX_OUTAGE_PAUSE, max(0.5, self.outage_pause * 2))
        self._own_backlog = self.concurrency == 1
        metrics.OUTAGES.labels(self.stream, self.group).inc()

    async def redo_own_backlog(self) -> int:
        """Handle, in stream order, the entries this consumer holds (read, not acknowledged:
        left by an outage); once none is left, new entries are read again."""
        reply: Any = await self.bus.redis.xreadgroup(
            self.group, self.name, {self._key: "0"}, count=self.batch
        )
        entries = [(entry_id, fields) for _s, got in reply or [] for entry_id, fields in got]
        if not entries:
            self._own_backlog = False
            return 0
        counts = await self._delivery_counts([entry_id for entry_id, _ in entries])
        for entry_id, fields in entries:
            if not fields:  # trimmed while it waited
                await self._ack(entry_id)
                continue
            await self.process(Entry(entry_id, fields), count=counts.get(entry_id, 2))
            if self._own_backlog and self.outage_pause:  # the outage goes on: wait again
                break
        return len(entries)

    def _log(
        self,
        entry: Entry,
        event: Event | None,
        outcome: str,
        started: float,
        count: int,
        error: str | None = None,
        *,
        exc_info: bool = False,
    ) -> None:
        """The one log line of an entry handled (ok, failed, dead_lettered or ignored)."""
        level = _LEVELS[outcome]
        if level < logging.WARNING and not self.log_events:
            return
        if not events_log.isEnabledFor(level):
            return
        fields = entry.fields
        extra: dict[str, object] = {
            "stream": self.stream,
            "group": self.group,
            "entry_id": entry.entry_id,
            "delivery": count,
            "outcome": outcome,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "event_type": fields.get("event_type"),
            "event_id": fields.get("event_id"),
            "conversation_id": fields.get("conversation_id") or None,
            "body": fields.get("body"),  # written only when LOG_BODIES=true
        }
        if event is not None:
            extra["trace_id"] = trace_id_of(event.traceparent)
        if error is not None:
            extra["error"] = error
        events_log.log(
            level,
            "%s %s %s",
            outcome,
            fields.get("event_type", "?"),
            self.stream,
            extra=extra,
            exc_info=exc_info,
        )

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
        dlq = names.dlq(self.stream)
        async with self.bus.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.bus.key(dlq), fields, maxlen=self.bus.maxlen_of(dlq) or None)
            pipe.xack(self._key, self.group, entry.entry_id)
            pipe.hdel(self.bus.key(names.failure_log(self.stream, self.group)), entry.entry_id)
            await pipe.execute()
        metrics.DEAD_LETTERED.labels(self.stream, self.group).inc()

    async def _ack(self, entry_id: str) -> None:
        await self.bus.redis.xack(self._key, self.group, entry_id)


_LEVELS = {
    "ok": logging.INFO,
    "ignored": logging.INFO,
    "failed": logging.WARNING,
    "dead_lettered": logging.ERROR,
}


def _parse(entry: Entry) -> Event | None:
    fields = entry.fields
    try:
        return parse_event(fields["event_type"], int(fields["schema_version"]), fields["body"])
    except UnknownEventError:
        return None
    except (KeyError, ValueError, ValidationError) as exc:
        raise PoisonEntryError(f"unparseable entry: {type(exc).__name__}: {exc}"[:2000]) from exc


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
