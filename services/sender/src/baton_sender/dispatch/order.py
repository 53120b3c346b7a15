"""How far `wa.outbound` is recorded: the dispatcher's bound for keeping invariant 6 across
sender replicas.

Messages to one customer must leave in the order they were produced: the order of their
`wa.outbound` entries. With several replicas, the consumer group hands consecutive entries to
different replicas, and a later entry can be recorded (and its message claimed) while an
earlier one for the same customer is still being recorded by another replica, or waits, held
by a replica that died, for its idle time to run out. So a message may leave only once every
earlier entry for its customer is recorded:

- an entry of the group that is still pending and may yet be recorded holds back its own
  customer (business number and recipient, read from the entry): that customer's messages
  are claimed only below it;
- everybody's messages are claimed only up to the last entry the group has handed out: a
  later one may be read and recorded by another replica before the claim runs, while an
  earlier one for the same customer is not recorded yet.

Pending entries that hold nobody back:
- entries this process has recorded already (the acknowledgement follows the commit; without
  this the dispatcher, woken by the commit, would wait for its next poll);
- entries whose last handling failed on their own account (not an outage: see
  `baton_shared.streams.outages`): they are retried, then dead-lettered, and must not stop
  their customer's messages meanwhile. The price: if such an entry does get recorded on a
  retry, its message may follow a later one to the same customer.

An entry left pending by a crash (no failure recorded) holds its customer back until it is
reclaimed (`RECLAIM_IDLE_MS`) and recorded; other customers' messages go on. An entry whose
customer cannot be read (gone from the stream, or not a valid command) holds everybody back
from its position, as the group cannot know whose it is; a command that is not valid fails
on its own account at its next handling, and then holds nobody back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from pydantic import ValidationError
from redis.exceptions import ResponseError

from baton_shared.events import MessageRequested
from baton_shared.events.catalogue import UnknownEventError, parse_event
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, position
from baton_shared.streams.consumer import OUTAGE_MARK

SCAN = 64  # pending entries looked at per round trip
MAX_SCAN = 1024  # pending entries looked at per bound; entries past them hold everybody back

Position = tuple[int, int]
Customer = tuple[str, str]  # business number, recipient
NO_BOUND: Position = (2**62, 0)  # past any entry


class Nobody(Enum):
    """What an entry that is a valid event but not a command is for: it holds nobody back."""

    NOBODY = "nobody"


NOBODY = Nobody.NOBODY


@dataclass(frozen=True, slots=True)
class Bound:
    """Which recorded messages may be claimed.

    Attributes:
        everyone: every message's entry must lie below this position.
        held: customers with an earlier entry not recorded yet: their messages' entries must
            also lie below that entry's position.
    """

    everyone: Position
    held: dict[Customer, Position] = field(default_factory=dict)

    def allows(self, customer: Customer, entry: Position) -> bool:
        """Whether a message to `customer` from entry `entry` may be claimed."""
        return entry < min(self.everyone, self.held.get(customer, NO_BOUND))


NO_LIMIT = Bound(NO_BOUND)


class RecordedBound:
    """Tracks which `wa.outbound` entries are recorded, for one sender process."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._stream = bus.key(names.WA_OUTBOUND)
        self._failures = bus.key(names.failure_log(names.WA_OUTBOUND, names.GROUP_SENDER))
        self._recorded: set[str] = set()
        self._customers: dict[str, Customer | Nobody | None] = {}  # entry id -> its customer

    def recorded(self, entry_ids: Iterable[str]) -> None:
        """This process committed these entries' messages (their acknowledgement may follow)."""
        self._recorded.update(entry_ids)

    async def below(self) -> Bound:
        """What may be claimed now: every message up to the last entry the group has handed
        out (later ones may be read and recorded before this bound is used), and for each
        customer with a pending entry that may yet be recorded, only messages before it."""
        try:
            async with self.bus.redis.pipeline(transaction=False) as pipe:
                pipe.xinfo_groups(self._stream)
                pipe.xpending_range(self._stream, names.GROUP_SENDER, min="-", max="+", count=SCAN)
                groups, pending = await pipe.execute()
        except ResponseError:  # no stream or no group yet: nothing was ever read from it
            return NO_LIMIT
        handed_out = next(
            (g["last-delivered-id"] for g in groups if g["name"] == names.GROUP_SENDER), None
        )
        if handed_out is None:
            return NO_LIMIT
        ms, seq = position(str(handed_out))
        everyone: Position = (ms, seq + 1)
        held: dict[Customer, Position] = {}
        oldest: Position | None = None
        scanned = 0
        while pending and scanned < MAX_SCAN:
            ids = [str(p["message_id"]) for p in pending]
            oldest = oldest or position(ids[0])
            scanned += len(ids)
            unreadable = await self._hold(ids, held)
            if unreadable is not None:  # whose it is cannot be known: everybody waits
                everyone = min(everyone, unreadable)
                pending = []
                break
            pending = await self.bus.redis.xpending_range(
                self._stream, names.GROUP_SENDER, min="(" + ids[-1], max="+", count=SCAN
            )
        if pending:  # more pending than looked at: whoever those are for waits
            everyone = min(everyone, position(str(pending[0]["message_id"])))
        self._forget(oldest)
        return Bound(everyone, {c: at for c, at in held.items() if at < everyone})

    async def _hold(
        self, pending_ids: list[str], held: dict[Customer, Position]
    ) -> Position | None:
        """Add to `held` the customers of those pending entries (in stream order) that may yet
        be recorded; returns the position of the first whose customer cannot be read."""
        failures = await self.bus.redis.hmget(self._failures, pending_ids)
        holding = [
            entry_id
            for entry_id, failure in zip(pending_ids, failures, strict=True)
            if entry_id not in self._recorded
            and not (failure and not str(failure).startswith(OUTAGE_MARK))
        ]
        customers = await self._customers_of(holding)
        for entry_id in holding:
            customer = customers[entry_id]
            if customer is None:
                return position(entry_id)
            if customer is not NOBODY:
                held.setdefault(customer, position(entry_id))  # the first is the oldest
        return None

    async def _customers_of(self, entry_ids: list[str]) -> dict[str, Customer | Nobody | None]:
        """The customer each entry is for (`NOBODY`: a valid event that is not a command; None:
        gone from the stream, or not a valid event), read once per entry."""
        unknown = [e for e in entry_ids if e not in self._customers]
        if unknown:
            async with self.bus.redis.pipeline(transaction=False) as pipe:
                for entry_id in unknown:
                    pipe.xrange(self._stream, min=entry_id, max=entry_id, count=1)
                replies = await pipe.execute()
            for entry_id, reply in zip(unknown, replies, strict=True):
                self._customers[entry_id] = _customer(reply[0][1]) if reply else None
        return {e: self._customers[e] for e in entry_ids}

    def _forget(self, oldest_pending: Position | None) -> None:
        """Drop what is remembered of entries no longer pending (older than the oldest one)."""
        if oldest_pending is None:
            self._recorded.clear()
            self._customers.clear()
        else:
            self._recorded = {e for e in self._recorded if position(e) >= oldest_pending}
            self._customers = {
                e: c for e, c in self._customers.items() if position(e) >= oldest_pending
            }


def _customer(fields: dict[str, str]) -> Customer | Nobody | None:
    """The business number and recipient of a `wa.outbound` entry, as the sender records
    them; `NOBODY` for another valid event, None for an entry that is not a valid event."""
    try:
        event = parse_event(
            fields.get("event_type", ""), int(fields.get("schema_version", "0")), fields["body"]
        )
    except (KeyError, ValueError, ValidationError, UnknownEventError):
        return None
    if not isinstance(event, MessageRequested):
        return NOBODY
    return event.payload.phone_number_id, event.payload.to
