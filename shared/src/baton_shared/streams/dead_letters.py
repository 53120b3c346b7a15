"""Dead letters: what is in each `<stream>.dlq`, and putting entries back once the cause is fixed.

A dead-letter entry is the original entry's fields plus `dlq_*` fields (see
`Consumer.dead_letter`). Re-driving one appends the original fields, unchanged, to the stream
it came from and deletes it from the DLQ in one Lua script, so two people re-driving the same
entry append it once. Every consumer group of that stream sees it again: Baton's consumers are
idempotent on the event id (and ingress on WhatsApp ids), so only the group that failed acts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from baton_shared.streams import names
from baton_shared.streams.bus import Bus

DLQ_FIELD_PREFIX = "dlq_"

# KEYS: dlq, stream. ARGV: dlq entry id, maxlen of the stream ('0': never by length).
# Returns the new entry id, or false when the DLQ has no such entry (any more).
_REDRIVE = """
local got = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #got == 0 then return false end
local fields = got[1][2]
local out = {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 4) ~= 'dlq_' then
    out[#out + 1] = fields[i]
    out[#out + 1] = fields[i + 1]
  end
end
local id
if ARGV[2] == '0' then
  id = redis.call('XADD', KEYS[2], '*', unpack(out))
else
  id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(out))
end
redis.call('XDEL', KEYS[1], ARGV[1])
return id
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of a dead-letter stream.

    Attributes:
        entry_id: its id in the DLQ (what `redrive` and `drop` take).
        stream: the stream it came from.
        group: the consumer group that gave up on it.
        original_id: its entry id in the original stream.
        deliveries: how many times it was delivered before it was given up on.
        error: the last error.
        fields: the original entry's fields, unchanged (the event's body included).
    """

    entry_id: str
    stream: str
    group: str
    original_id: str
    deliveries: int
    error: str
    fields: dict[str, str]

    @classmethod
    def from_entry(cls, stream: str, entry_id: str, fields: dict[str, str]) -> DeadLetter:
        """Split a DLQ entry into what the consumer added and the original fields."""
        deliveries = fields.get("dlq_deliveries", "")
        return cls(
            entry_id=entry_id,
            stream=fields.get("dlq_stream", stream),
            group=fields.get("dlq_group", ""),
            original_id=fields.get("dlq_entry_id", ""),
            deliveries=int(deliveries) if deliveries.isdigit() else 0,
            error=fields.get("dlq_error", ""),
            fields={k: v for k, v in fields.items() if not k.startswith(DLQ_FIELD_PREFIX)},
        )

    @property
    def event_type(self) -> str:
        """The event type the original entry claimed (may be missing on garbage)."""
        return self.fields.get("event_type", "")

    @property
    def event_id(self) -> str:
        """The event id the original entry claimed (may be missing on garbage)."""
        return self.fields.get("event_id", "")


class DeadLetters:
    """Reads, re-drives and drops the dead letters of every Baton stream on one bus."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._redrive = bus.redis.register_script(_REDRIVE)

    def _dlq(self, stream: str) -> str:
        if stream not in names.ALL_STREAMS:
            raise ValueError(f"unknown stream {stream!r}; known: {', '.join(names.ALL_STREAMS)}")
        return self.bus.key(names.dlq(stream))

    async def counts(self) -> dict[str, int]:
        """How many dead letters each stream has (every stream, zeros included)."""
        async with self.bus.redis.pipeline(transaction=False) as pipe:
            for stream in names.ALL_STREAMS:
                pipe.xlen(self._dlq(stream))
            lengths = await pipe.execute()
        return dict(zip(names.ALL_STREAMS, (int(n) for n in lengths), strict=True))

    async def read(self, stream: str, *, after: str = "-", count: int = 100) -> list[DeadLetter]:
        """Up to `count` dead letters of `stream`, oldest first, after entry id `after`."""
        start = "-" if after == "-" else f"({after}"
        got: Any = await self.bus.redis.xrange(self._dlq(stream), min=start, count=count)
        return [DeadLetter.from_entry(stream, entry_id, fields) for entry_id, fields in got]

    async def all(self, stream: str, *, page: int = 500) -> AsyncIterator[DeadLetter]:
        """Every dead letter of `stream`, oldest first, read a page at a time."""
        after = "-"
        while True:
            letters = await self.read(stream, after=after, count=page)
            for letter in letters:
                yield letter
            if len(letters) < page:
                return
            after = letters[-1].entry_id

    async def get(self, stream: str, entry_id: str) -> DeadLetter | None:
        """One dead letter by its DLQ entry id."""
        got: Any = await self.bus.redis.xrange(self._dlq(stream), min=entry_id, max=entry_id)
        return DeadLetter.from_entry(stream, *got[0]) if got else None

    async def redrive(self, stream: str, entry_id: str) -> str | None:
        """Append the entry's original fields to `stream` again and remove it from the DLQ,
        atomically; returns the new entry id, or None when the DLQ has no such entry."""
        result = await self._redrive(
            keys=[self._dlq(stream), self.bus.key(stream)],
            args=[entry_id, self.bus.maxlen_of(stream)],
        )
        return str(result) if result else None

    async def drop(self, stream: str, *entry_ids: str) -> int:
        """Delete dead letters for good; returns how many existed."""
        if not entry_ids:
            return 0
        return int(await self.bus.redis.xdel(self._dlq(stream), *entry_ids))
