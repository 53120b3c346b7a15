"""Publishing events to streams, exactly once per event id, with approximate trimming."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from baton_shared.events import Event
from baton_shared.observability import metrics
from baton_shared.streams import names

# Append each entry unless an entry with the same event id was appended within the marker's
# lifetime. Atomic per entry, so an outbox row re-published after a crash is appended once.
# One call for a whole batch: per call, not per entry, is where the client spends its time.
# (On Redis Cluster a call must stay within one hash slot: batches would be split by slot.)
# KEYS: each entry's stream and marker in turn. ARGV[1]: the markers' lifetime (s); then, per
# entry, its stream's MAXLEN ('0': never trimmed by length), its number of field and value
# arguments, and those. Returns each entry's id, or false where it was appended before.
_PUBLISH_ONCE = """
local ids, at = {}, 2
for i = 1, #KEYS, 2 do
  local maxlen, last = ARGV[at], at + 1 + tonumber(ARGV[at + 1])
  if redis.call('SET', KEYS[i + 1], '1', 'NX', 'EX', ARGV[1]) then
    if maxlen == '0' then
      ids[#ids + 1] = redis.call('XADD', KEYS[i], '*', unpack(ARGV, at + 2, last))
    else
      ids[#ids + 1] = redis.call(
        'XADD', KEYS[i], 'MAXLEN', '~', maxlen, '*', unpack(ARGV, at + 2, last))
    end
  else
    ids[#ids + 1] = false
  end
  at = last + 1
end
return ids
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry as read from Redis, before parsing.

    Attributes:
        entry_id: the Redis stream entry id.
        fields: the entry's fields (decoded as UTF-8).
    """

    entry_id: str
    fields: dict[str, str]


_ENTRY_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
_LARGEST_ID_PART = 2**64 - 1  # both parts of a stream entry id are 64-bit unsigned


def is_entry_id(value: str) -> bool:
    """Whether `value` is a stream entry id Redis can hold (`<ms>-<seq>`, each below 2**64):
    a larger one passes a digits-only check and then fails the command that uses it."""
    found = _ENTRY_ID.match(value)
    return found is not None and all(int(part) <= _LARGEST_ID_PART for part in found.groups())


def position(entry_id: str) -> tuple[int, int]:
    """An entry id as (ms, seq): ordered as the stream orders its entries."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def stream_fields(
    event_id: str, event_type: str, schema_version: int, conversation_id: str | None, body: str
) -> dict[str, str]:
    """The flat stream fields of an event: routing facts plus the full JSON envelope."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "schema_version": str(schema_version),
        "conversation_id": conversation_id or "",
        "body": body,
    }


def entry_fields(event: Event) -> dict[str, str]:
    """The stream fields of a typed event."""
    return stream_fields(
        str(event.event_id),
        event.event_type,
        event.schema_version,
        event.conversation_id,
        event.model_dump_json(),
    )


async def undelivered(redis: Redis, key: str, last_delivered: Any, *, cap: int) -> int | None:
    """How many entries of stream `key` follow a group's `last-delivered-id` (up to `cap`):
    its lag, for Redis servers that do not report one (6.2, as the embedded Redis of
    `make run`), and for 7 where XINFO cannot tell; None without a last-delivered id."""
    if not last_delivered:
        return None
    entries = await redis.xrange(key, min=f"({last_delivered}", count=cap)
    return len(entries or [])


class Bus:
    """A Redis connection plus the key prefix of this deployment (or test run)."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "",
        maxlen: int = 100_000,
        dedupe_seconds: int = 3600,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.maxlen = maxlen
        self.dedupe_seconds = dedupe_seconds
        self._publish_once = redis.register_script(_PUBLISH_ONCE)
        self._published_counters: dict[tuple[str, str], Any] = {}

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "", maxlen: int = 100_000, dedupe_seconds: int = 3600
    ) -> Bus:
        """A bus on a new connection pool for `url`."""
        redis = Redis.from_url(url, decode_responses=True)
        return cls(redis, prefix=prefix, maxlen=maxlen, dedupe_seconds=dedupe_seconds)

    def maxlen_of(self, stream: str) -> int:
        """The approximate length `stream` is trimmed to on append; 0: never by length.

        Dead-letter streams are never trimmed by length either: an entry there may be the
        only copy of a webhook answered 200, and a burst of dead letters (an outage, a bad
        release) must not push out the older ones. They shrink by `baton-dlq redrive` and
        `drop`; watch `baton_stream_dlq_length`."""
        if stream in names.ACK_TRIMMED or names.is_dlq(stream):
            return 0
        return self.maxlen

    def key(self, name: str) -> str:
        """The Redis key of a stream or key name under this bus's prefix."""
        return f"{self.prefix}{name}"

    async def publish(self, event: Event, *, stream: str | None = None) -> str | None:
        """Append `event` to its stream; returns the entry id, or None if already appended."""
        return await self.publish_fields(
            stream or event.stream, str(event.event_id), entry_fields(event)
        )

    async def publish_fields(
        self, stream: str, event_id: str, fields: dict[str, str]
    ) -> str | None:
        """Append prepared fields once per event id (see `publish`)."""
        return (await self.publish_many([(stream, event_id, fields)]))[0]

    async def publish_many(
        self, items: Sequence[tuple[str, str, dict[str, str]]]
    ) -> list[str | None]:
        """Append several (stream, event_id, fields) in order, in one round trip.

        Each item is appended once per event id, as with `publish`; the result lists the entry
        ids, None for items appended before. Not atomic as a whole: a failure part-way leaves
        the first items appended, and publishing them again is harmless."""
        if not items:
            return []
        results = await self._run_publish_script(items)
        ids: list[str | None] = []
        for (stream, _, _), result in zip(items, results, strict=True):
            self._published(stream, "appended" if result else "duplicate").inc()
            ids.append(str(result) if result else None)
        return ids

    async def append_many(self, items: Sequence[tuple[str, dict[str, str]]]) -> list[str]:
        """Append several (stream, fields) in order, in one round trip, without the
        publish-once check: for entries whose consumers de-duplicate durably on their own and
        are appended too often for a marker key each (`wa.webhooks`). Returns the entry ids.
        Not atomic as a whole, like `publish_many`."""
        if not items:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, fields in items:
                maxlen = self.maxlen_of(stream)
                pipe.xadd(
                    self.key(stream),
                    fields,  # type: ignore[arg-type]
                    maxlen=maxlen or None,
                    approximate=True,
                )
            results = await pipe.execute()
        for stream, _ in items:
            self._published(stream, "appended").inc()
        return [str(entry_id) for entry_id in results]

    def _published(self, stream: str, outcome: str) -> Any:
        """The `PUBLISHED` counter of (stream, outcome), looked up once (a labelled lookup
        takes a lock and builds a key: measurable per entry at thousands a second)."""
        counter = self._published_counters.get((stream, outcome))
        if counter is None:
            counter = metrics.PUBLISHED.labels(stream, outcome)
            self._published_counters[(stream, outcome)] = counter
        return counter

    async def _run_publish_script(
        self, items: Sequence[tuple[str, str, dict[str, str]]]
    ) -> list[Any]:
        """One EVALSHA of the publish-once script for every item; load the script and redo the
        call if Redis lost it (nothing ran then). Not the `Script` object's call: that asks
        SCRIPT EXISTS first, a round trip per batch."""
        keys: list[str] = []
        args: list[str | int] = [self.dedupe_seconds]
        for stream, event_id, fields in items:
            keys += (self.key(stream), self.key(names.published_marker(event_id)))
            args += (self.maxlen_of(stream), 2 * len(fields))
            for pair in fields.items():
                args += pair
        try:
            results = await self.redis.evalsha(self._publish_once.sha, len(keys), *keys, *args)
        except NoScriptError:
            self._publish_once.sha = await self.redis.script_load(_PUBLISH_ONCE)
            results = await self.redis.evalsha(self._publish_once.sha, len(keys), *keys, *args)
        return list(results)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()
