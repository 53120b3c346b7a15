"""Outbox: events are written in the same transaction as the state they describe, then
published by a relay. A crash between commit and publish delays the event, never loses it;
a crash after publish but before the row is deleted re-publishes it, and the bus drops the
repeat by event id."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from baton_shared.db.engine import OUTBOX_STAGED, Database
from baton_shared.db.tables import outbox
from baton_shared.events import Event
from baton_shared.observability import metrics
from baton_shared.streams.bus import Bus, stream_fields

log = logging.getLogger(__name__)


# One statement for any number of events (arrays, not executemany: one execution on the
# server instead of one per row); WITH ORDINALITY ... ORDER BY gives the rows their ids, and
# so their publication order, in the order the events were staged.
_STAGE = text(
    "INSERT INTO outbox (event_id, stream, event_type, schema_version, conversation_id, body) "
    "SELECT e, s, t, v, c, b FROM unnest(CAST(:event_ids AS uuid[]), "
    "CAST(:streams AS text[]), CAST(:event_types AS text[]), CAST(:versions AS bigint[]), "
    "CAST(:conversation_ids AS text[]), CAST(:bodies AS text[])) "
    "WITH ORDINALITY AS u(e, s, t, v, c, b, n) ORDER BY n"
)


@dataclass(frozen=True, slots=True)
class Staged:
    """An event staged in the outbox, as the stream entry it becomes (serialised once).

    Attributes:
        event_id: the event's id (its outbox row's key).
        stream: the stream it goes to.
        fields: its stream entry's fields.
    """

    event_id: uuid.UUID
    stream: str
    fields: dict[str, str]


async def add_to_outbox(
    session: AsyncSession, *events: Event, wake_relay: bool = True
) -> list[Staged]:
    """Stage events for publication when (and only if) the session's transaction commits;
    the commit wakes the relay, unless the committer publishes them itself
    (`wake_relay=False`, then `publish_committed` with what this returns): the relay still
    finds them at its next poll if it does not."""
    staged = [
        Staged(
            e.event_id,
            e.stream,
            stream_fields(
                str(e.event_id),
                e.event_type,
                e.schema_version,
                e.conversation_id,
                e.model_dump_json(),
            ),
        )
        for e in events
    ]
    await stage_entries(session, staged, wake_relay=wake_relay)
    return staged


async def stage_entries(
    session: AsyncSession, staged: Sequence[Staged], *, wake_relay: bool = True
) -> None:
    """`add_to_outbox` for events already serialised as stream entries (`stream_fields`):
    for a producer that writes a hot event's JSON itself instead of through its model."""
    if not staged:
        return
    if wake_relay:
        session.info[OUTBOX_STAGED] = True
    await session.execute(
        _STAGE,
        {
            "event_ids": [s.event_id for s in staged],
            "streams": [s.stream for s in staged],
            "event_types": [s.fields["event_type"] for s in staged],
            "versions": [int(s.fields["schema_version"]) for s in staged],
            "conversation_ids": [s.fields["conversation_id"] or None for s in staged],
            "bodies": [s.fields["body"] for s in staged],
        },
    )


async def publish_committed(db: Database, bus: Bus, staged: Sequence[Staged]) -> None:
    """Publish events whose outbox rows the caller has just committed (what `add_to_outbox`
    returned), at once instead of at the relay's next round, then delete their rows.

    Only for events whose relative order across transactions does not matter (the relay
    publishes in commit order; concurrent committers publishing their own events do not).
    Never raises: if Redis or PostgreSQL refuses, the rows stay and the relay publishes them
    at its next poll (once past its grace, `OutboxRelay`); an event published here and again by the relay is appended once (the
    bus drops the repeat by event id)."""
    if not staged:
        return
    try:
        await bus.publish_many([(s.stream, str(s.event_id), s.fields) for s in staged])
        async with db.sessions() as session, session.begin():
            await session.execute(_DELETE_EVENTS, {"ids": [s.event_id for s in staged]})
    except Exception:
        log.warning(
            "publishing %d committed events failed; the outbox relay will",
            len(staged),
            exc_info=True,
        )
        return
    metrics.OUTBOX_PUBLISHED.labels(db.schema).inc(len(staged))


class OutboxRelay:
    """Publishes outbox rows in commit order; one relay per schema publishes at a time."""

    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        batch: int = 500,
        poll_seconds: float = 0.5,
        backlog_every_seconds: float = 1.0,
        grace_seconds: float = 0.0,
    ):
        """`grace_seconds`: rows staged less than this long ago are left to the transaction
        that staged them, which publishes them itself (`publish_committed`); for a schema whose
        every event is published so. Without it the relay's polls take, and publish a second
        time, the rows of every commit whose own publication is under way."""
        self.db = db
        self.bus = bus
        self.batch = batch
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds
        self.running = False
        self.backlog_every_seconds = backlog_every_seconds
        self._next_backlog = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; wake on local commits, poll for other writers."""
        self.running = True
        try:
            while not stop.is_set():
                self.db.changed.clear()
                try:
                    if await self.publish_batch() >= self.batch:
                        continue
                except Exception:  # PostgreSQL or Redis away: retry after the poll interval
                    metrics.OUTBOX_FAILURES.labels(self.db.schema).inc()
                    log.exception("outbox relay for %s failed; retrying", self.db.schema)
                waiters = {
                    asyncio.ensure_future(self.db.changed.wait()),
                    asyncio.ensure_future(stop.wait()),
                }
                _, pending = await asyncio.wait(
                    waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
        finally:
            self.running = False

    async def publish_batch(self) -> int:
        """Publish up to `batch` rows in id order and delete them; returns how many."""
        async with self.db.sessions() as session, session.begin():
            # Serialise relays of this schema (several replicas) so publication keeps order.
            if not await session.scalar(_RELAY_LOCK):
                return 0
            params = {"limit": self.batch, "grace": self.grace_seconds}
            rows = (await session.execute(_NEXT_ROWS, params)).all()
            await self.bus.publish_many(
                [
                    (
                        row.stream,
                        str(row.event_id),
                        stream_fields(
                            str(row.event_id),
                            row.event_type,
                            row.schema_version,
                            row.conversation_id,
                            row.body,
                        ),
                    )
                    for row in rows
                ]
            )
            if rows:
                # By id, not by range: a slower transaction may commit a lower id later.
                await session.execute(_DELETE_ROWS, {"ids": [r.id for r in rows]})
                metrics.OUTBOX_PUBLISHED.labels(self.db.schema).inc(len(rows))
            if len(rows) == self.batch:  # more waiting: measure the backlog once it drains
                return len(rows)
            now = time.monotonic()
            if now >= self._next_backlog:  # a gauge: once a second is plenty
                self._next_backlog = now + self.backlog_every_seconds
                backlog, oldest_age = (await session.execute(_BACKLOG)).one()
                metrics.OUTBOX_BACKLOG.labels(self.db.schema).set(backlog or 0)
                metrics.OUTBOX_OLDEST.labels(self.db.schema).set(max(0.0, float(oldest_age or 0)))
            return len(rows)


# The outbox's statements, built once; each has one text whatever the batch size, so it is
# prepared once per connection.
_RELAY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('outbox:' || current_schema()))")
_NEXT_ROWS = (
    select(outbox)
    .where(
        outbox.c.created_at
        <= func.clock_timestamp() - func.make_interval(0, 0, 0, 0, 0, 0, bindparam("grace"))
    )
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
)
_DELETE_ROWS = text("DELETE FROM outbox WHERE id = ANY(:ids)")
_DELETE_EVENTS = text("DELETE FROM outbox WHERE event_id = ANY(:ids)")  # publish_committed
_BACKLOG = select(
    func.count(),
    func.coalesce(func.extract("epoch", func.now() - func.min(outbox.c.created_at)), 0),
).select_from(outbox)
