"""A stream consumer that handles each read batch in one go (one transaction, say), falling
back to entry-by-entry handling when the batch fails.

The batch keeps stream order, so a batch handler can record entries in arrival order.
Entries that do not parse as the batch's event type, reclaimed entries and a failed batch go
through `Consumer.process` one at a time, with its retry and dead-letter rules unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import ValidationError

from baton_shared.events import Event, UnknownEventError, parse_event
from baton_shared.observability import metrics
from baton_shared.streams.bus import Bus, Entry, position
from baton_shared.streams.consumer import Consumer, Delivery, Handler
from baton_shared.streams.outages import is_outage

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Event]], Awaitable[None]]
# For handlers that need each entry's delivery facts too (e.g. to dead-letter one entry's
# parts themselves): (event, delivery) pairs, in stream order.
DeliveredBatchHandler = Callable[[Sequence[tuple[Event, Delivery]]], Awaitable[None]]


class BatchConsumer(Consumer):
    """A `Consumer` whose fresh entries of `event_type` are handled a read batch at a time.

    Give `batch_handler` (events) or `delivered_batch_handler` ((event, delivery) pairs)."""

    def __init__(
        self,
        bus: Bus,
        *,
        event_type: type[Event],
        batch_handler: BatchHandler | None = None,
        delivered_batch_handler: DeliveredBatchHandler | None = None,
        handler: Handler,
        **kwargs: Any,
    ) -> None:
        if (batch_handler is None) == (delivered_batch_handler is None):
            raise TypeError("give exactly one of batch_handler and delivered_batch_handler")
        super().__init__(bus, handler=handler, **kwargs)
        self.event_type = event_type
        self.batch_handler = batch_handler
        self.delivered_batch_handler = delivered_batch_handler
        self._stream_key = bus.key(self.stream)
        self._reclaim_at = 0.0

    async def step(self) -> int:
        """Reclaim idle entries when due (one by one), then read and handle one batch."""
        handled = 0
        if time.monotonic() >= self._reclaim_at:
            handled += await self.reclaim()
            self._reclaim_at = time.monotonic() + self.reclaim_idle_ms / 2000
        if self._own_backlog:  # an outage left entries with us: first those, in order
            return handled + await self.redo_own_backlog()
        reply: Any = await self.bus.redis.xreadgroup(
            self.group, self.name, {self._stream_key: ">"}, count=self.batch, block=self.block_ms
        )
        entries = [Entry(entry_id, fields) for _s, got in reply or [] for entry_id, fields in got]
        if entries:
            await self.process_batch(entries)
        return handled + len(entries)

    async def process_batch(self, entries: Sequence[Entry]) -> None:
        """Handle the batch's events of `event_type` at once; everything else one by one."""
        batch: list[tuple[Entry, Event]] = []
        others: list[Entry] = []
        for entry in entries:
            event = _parse(entry)
            if isinstance(event, self.event_type):
                batch.append((entry, event))
            else:
                others.append(entry)
        if batch:
            started = time.perf_counter()
            try:
                await self._handle_batch(batch)
            except Exception as exc:
                if is_outage(exc):  # one by one would meet the same outage: retried later
                    self.note_outage()
                    log.warning(
                        "batch of %d on %s met an outage; left pending for a retry: %s",
                        len(batch),
                        self.stream,
                        exc,
                    )
                    batch = []
                else:
                    log.warning(
                        "batch of %d on %s failed; handling its entries one by one",
                        len(batch),
                        self.stream,
                        exc_info=True,
                    )
                    others = [entry for entry, _ in batch] + others
            else:
                self.outage_pause = 0.0
                metrics.HANDLED.labels(self.stream, self.group).inc(len(batch))
                metrics.HANDLER_SECONDS.labels(self.stream, self.group).observe(
                    time.perf_counter() - started
                )
                await self.bus.redis.xack(
                    self._stream_key, self.group, *[entry.entry_id for entry, _ in batch]
                )
                for entry, event in batch:
                    self._log(entry, event, "ok", started, 1)
        for entry in sorted(others, key=lambda e: position(e.entry_id)):
            await self.process(entry, count=1)

    async def _handle_batch(self, batch: Sequence[tuple[Entry, Event]]) -> None:
        if self.delivered_batch_handler is not None:  # fresh entries: first delivery
            delivered = [(event, Delivery(self.stream, e.entry_id, 1)) for e, event in batch]
            await self.delivered_batch_handler(delivered)
        elif self.batch_handler is not None:
            await self.batch_handler([event for _, event in batch])


def _parse(entry: Entry) -> Event | None:
    """The entry's event, or None when it does not parse (left to `Consumer.process`)."""
    fields = entry.fields
    try:
        return parse_event(fields["event_type"], int(fields["schema_version"]), fields["body"])
    except (UnknownEventError, KeyError, ValueError, ValidationError):
        return None
