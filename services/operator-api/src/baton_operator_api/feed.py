"""The live feed: what happens on the streams, as dashboard events, in stream order.

It reads the streams directly (XREAD, no consumer group), so every replica and every client
sees every event. An item's id holds the position in each stream, so a client reconnecting
with `Last-Event-ID` resumes where it left off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from baton_operator_api.errors import UnavailableError
from baton_operator_api.failures import explain, failed
from baton_shared.events import (
    NOT_MESSAGES,
    DeliveryStatusChanged,
    Event,
    InterventionRequested,
    MessageFailed,
    MessageReceived,
    MessageSent,
    MessageSuppressed,
    parse_event,
)
from baton_shared.events.conversation import ControlChange
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, is_entry_id, position

log = logging.getLogger(__name__)

STREAMS = (names.WA_INBOUND, names.WA_OUTBOUND_RESULTS, names.CONV_CONTROL)
READ_COUNT = 100  # entries read per stream and round


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One live event.

    Attributes:
        id: positions in every feed stream after this item (`Last-Event-ID` to resume).
        kind: message_in, message_out, status or mode_change.
        data: the JSON body sent to the client.
    """

    id: str
    kind: str
    data: dict[str, Any]


def describe(event: Event) -> tuple[str, dict[str, Any]] | None:
    """The feed kind and body of an event, or None when dashboards do not need it."""
    base: dict[str, Any] = {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "conversation_id": event.conversation_id,
        "occurred_at": event.occurred_at.isoformat(),
    }
    if isinstance(event, MessageReceived):
        msg = event.payload
        return "message_in", {
            **base,
            "wa_id": msg.customer_id,
            "type": msg.type.value,
            "text": msg.text,
            "message_id": msg.message_id,
            # When the customer sent it (WhatsApp's clock): the transcript's order.
            "sent_at": msg.timestamp.isoformat(),
        }
    if isinstance(event, MessageSent | MessageFailed | MessageSuppressed | DeliveryStatusChanged):
        out = event.payload
        if out.kind in NOT_MESSAGES:  # the AI's typing indicator: not a message
            return None
        body = {
            **base,
            "command_id": out.command_id,
            "author": out.author.value,
            "to": out.to,
            "text": out.text,
            "status": out.status.value if out.status else None,
            "reason": out.reason,
            "error_code": out.error.code if out.error else None,
            "error": explain(out.reason, out.error, out.details) if failed(event, out) else None,
        }
        return ("message_out" if isinstance(event, MessageSent) else "status"), body
    if isinstance(event.payload, ControlChange) and not isinstance(event, InterventionRequested):
        # The AI's request is not a change: `conversation.awaiting_human` is, once accepted.
        change = event.payload
        return "mode_change", {
            **base,
            "mode": change.mode.value,
            "epoch": change.epoch,
            "operator": change.operator,
            "reason": change.reason,
        }
    return None


def parse_position(value: str | None) -> list[str] | None:
    """Stream positions from a `Last-Event-ID`, or None when absent or malformed."""
    parts = (value or "").split(",")
    # Past 64 bits Redis refuses the read, and the feed broke off after its first byte.
    if len(parts) == len(STREAMS) and all(is_entry_id(p) for p in parts):
        return parts
    return None


async def positions_now(bus: Bus) -> list[str]:
    """The current end of every feed stream: following from here yields only new events."""
    ends: list[str] = []
    for stream in STREAMS:
        last = await bus.redis.xrevrange(bus.key(stream), count=1)
        ends.append(str(last[0][0]) if last else "0-0")
    return ends


async def follow(
    bus: Bus,
    stop: asyncio.Event,
    *,
    conversation_id: str | None = None,
    since: list[str] | None = None,
    block_ms: int = 1000,
    allowed: Callable[[], Awaitable[bool]] | None = None,
    recheck_seconds: float = 30.0,
) -> AsyncIterator[FeedItem]:
    """Yield live feed items from `since` (default: now) until `stop` is set, or until
    `allowed` (asked every `recheck_seconds`, also while nothing happens) says no: a feed
    whose token was revoked or whose operator was deactivated ends within that time."""
    positions = since or await positions_now(bus)
    keys = [bus.key(s) for s in STREAMS]
    recheck_at = time.monotonic() + recheck_seconds
    while not stop.is_set():
        if allowed is not None and time.monotonic() >= recheck_at:
            if not await allowed():
                return
            recheck_at = time.monotonic() + recheck_seconds
        reply: Any = await bus.redis.xread(
            dict(zip(keys, positions, strict=True)), count=READ_COUNT, block=block_ms
        )
        batch: list[tuple[str, int, dict[str, str]]] = []
        # A stream that filled its count may hold more entries older than another stream's
        # last: this round goes only as far as the earliest such stream's last entry, and
        # the rest is read again next round, so the streams stay in order however far
        # behind a client resumes.
        until: tuple[int, int] | None = None
        for key, entries in reply or []:
            index = keys.index(key)
            batch += [(entry_id, index, fields) for entry_id, fields in entries]
            if len(entries) >= READ_COUNT:
                last = position(entries[-1][0])
                until = last if until is None else min(until, last)
        batch.sort(key=lambda item: position(item[0]))
        for entry_id, index, fields in batch:
            if until is not None and position(entry_id) > until:
                break
            positions[index] = entry_id
            if conversation_id and fields.get("conversation_id") != conversation_id:
                continue
            try:
                event = parse_event(
                    fields["event_type"], int(fields["schema_version"]), fields["body"]
                )
            except Exception:  # unknown or malformed: the consumers' DLQ deals with those
                log.debug("feed skips entry %s", entry_id)
                continue
            described = describe(event)
            if described is not None:
                yield FeedItem(",".join(positions), *described)


class Feeds:
    """This replica's live feeds: a Redis connection pool of their own (each open feed keeps
    one connection in a blocking read), so however many dashboards are open, the pool that
    takeovers, handbacks and the consumers use stays free; and a cap on how many are open.

    Args:
        redis_url: the Redis server.
        prefix: the key prefix of this deployment's streams.
        limit: feeds open at once; one more is refused with 503.
    """

    def __init__(self, redis_url: str, prefix: str, limit: int) -> None:
        # One connection per feed, one for reading where the streams end (`positions_now`).
        redis = Redis.from_url(redis_url, decode_responses=True, max_connections=limit + 1)
        self.bus = Bus(redis, prefix=prefix)
        self.limit = limit
        self.open = 0

    def take(self) -> FeedSlot:
        """A slot for one more feed, or 503 when all are taken."""
        if self.open >= self.limit:
            raise UnavailableError(
                f"{self.limit} live feeds are open on this replica already",
                code="too_many_feeds",
                hint="close another feed, or raise OPERATOR_API_FEED_MAX_CLIENTS",
            )
        self.open += 1
        return FeedSlot(self)

    async def aclose(self) -> None:
        """Close the feeds' connections."""
        await self.bus.aclose()


class FeedSlot:
    """One open feed's place; `release` is idempotent (called when the stream ends, and again
    when the response finishes, whichever comes first)."""

    def __init__(self, feeds: Feeds) -> None:
        self._feeds: Feeds | None = feeds

    def release(self) -> None:
        """Give the place back."""
        if self._feeds is not None:
            self._feeds.open -= 1
            self._feeds = None
