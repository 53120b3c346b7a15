"""How far `wa.outbound` is recorded: the dispatcher's bound for keeping invariant 6 across
sender replicas.

Messages to one customer must leave in the order they were produced: the order of their
`wa.outbound` entries. With several replicas, the consumer group hands consecutive entries to
different replicas, and a later entry can be recorded (and its message claimed) while an
earlier one for the same customer is still being recorded by another replica, or waits, held
by a replica that died, for its idle time to run out. So a message may leave only once every
entry before its own is recorded: the dispatcher claims only messages whose entry lies below
the oldest entry of the group that is still pending and may yet be recorded.

Pending entries that do not hold the others back:
- entries this process has recorded already (the acknowledgement follows the commit; without
  this the dispatcher, woken by the commit, would wait for its next poll);
- entries whose last handling failed on their own account (not an outage: see
  `baton_shared.streams.outages`): they are retried, then dead-lettered, and must not stop every
  customer's messages meanwhile. The price: if such an entry does get recorded on a retry,
  its message may follow a later one to the same customer.

An entry left pending by a crash (no failure recorded) does hold them back until it is
reclaimed (`RECLAIM_IDLE_MS`) and recorded.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.exceptions import ResponseError

from baton_shared.streams import names
from baton_shared.streams.bus import Bus, position
from baton_shared.streams.consumer import OUTAGE_MARK

SCAN = 64  # pending entries looked at per round trip

Position = tuple[int, int]
NO_BOUND: Position = (2**62, 0)  # past any entry


class RecordedBound:
    """Tracks which `wa.outbound` entries are recorded, for one sender process."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._stream = bus.key(names.WA_OUTBOUND)
        self._failures = bus.key(names.failure_log(names.WA_OUTBOUND, names.GROUP_SENDER))
        self._recorded: set[str] = set()

    def recorded(self, entry_ids: Iterable[str]) -> None:
        """This process committed these entries' messages (their acknowledgement may follow)."""
        self._recorded.update(entry_ids)

    async def below(self) -> Position:
        """Every entry before this position is recorded (or dead-lettered): the oldest entry
        still pending that may yet be recorded, else the one after the last entry the group
        has handed out (later ones may be read and recorded before this bound is used)."""
        try:
            async with self.bus.redis.pipeline(transaction=False) as pipe:
                pipe.xinfo_groups(self._stream)
                pipe.xpending_range(self._stream, names.GROUP_SENDER, min="-", max="+", count=SCAN)
                groups, pending = await pipe.execute()
        except ResponseError:  # no stream or no group yet: nothing was ever read from it
            return NO_BOUND
        handed_out = next(
            (g["last-delivered-id"] for g in groups if g["name"] == names.GROUP_SENDER), None
        )
        if handed_out is None:
            return NO_BOUND
        ms, seq = position(str(handed_out))
        bound = (ms, seq + 1)
        oldest: Position | None = None
        while pending:
            ids = [str(p["message_id"]) for p in pending]
            oldest = oldest or position(ids[0])
            failures = await self.bus.redis.hmget(self._failures, ids)
            for entry_id, failure in zip(ids, failures, strict=True):
                if entry_id in self._recorded:
                    continue
                if failure and not str(failure).startswith(OUTAGE_MARK):
                    continue
                self._forget(oldest)
                return min(bound, position(entry_id))
            pending = await self.bus.redis.xpending_range(
                self._stream, names.GROUP_SENDER, min="(" + ids[-1], max="+", count=SCAN
            )
        self._forget(oldest)
        return bound

    def _forget(self, oldest_pending: Position | None) -> None:
        """Drop remembered entries that are no longer pending (older than the oldest one)."""
        if oldest_pending is None:
            self._recorded.clear()
        else:
            self._recorded = {e for e in self._recorded if position(e) >= oldest_pending}
