"""Inbox: remember processed event ids so a redelivered event changes nothing; forget them
once no redelivery can come any more."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_shared.db.engine import Database
from baton_shared.db.tables import inbox
from baton_shared.observability import metrics
from baton_shared.periodic import Periodic


async def claim_inbox(session: AsyncSession, consumer: str, event_id: uuid.UUID) -> bool:
    """Record `event_id` as processed by `consumer` in this transaction.

    Returns False when it was processed before: the caller then does nothing. Because the
    row commits with the caller's own changes, a crash before commit leaves no trace.
    """
    params = {"consumer": consumer, "event_id": event_id}
    return (await session.execute(_CLAIM, params)).first() is not None


# Built once: constructing the statement per call cost more CPU than running it.
_CLAIM = (
    insert(inbox)
    .values(consumer=bindparam("consumer"), event_id=bindparam("event_id"))
    .on_conflict_do_nothing()
    .returning(inbox.c.event_id)
)


# Oldest rows first, a bounded number per statement, so no statement holds locks for long.
# Inbox rows are appended in time order, so the old ones are found at the start of the heap.
_PRUNE = text(
    "DELETE FROM inbox WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM inbox WHERE processed_at < now() - CAST(:keep AS interval) LIMIT :limit))"
)


class InboxPruner:
    """Deletes inbox rows older than the retention (`worker()` runs it every interval).

    An event comes back only while its entry is pending (a crash before the ack) or when
    someone re-publishes it (publish-once markers last 7 days) or re-drives it from a DLQ;
    the retention must outlast all three. The first round runs one interval after start, so
    a service back from a long outage handles its pending entries against a full inbox.
    """

    def __init__(self, db: Database, *, retention: timedelta, batch: int = 10_000) -> None:
        self.db = db
        self.retention = retention
        self.batch = batch

    def worker(self, interval_seconds: float = 3600.0) -> Periodic:
        """The background worker that prunes every `interval_seconds`."""
        return Periodic(f"InboxPruner {self.db.schema}", interval_seconds, self.prune)

    async def prune(self) -> int:
        """Delete every row older than the retention, a batch per transaction; returns how
        many. One replica of a service prunes at a time (the others skip the round)."""
        total = 0
        while True:
            async with self.db.sessions() as session, session.begin():
                locked = await session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(hashtext('inbox:' || current_schema()))")
                )
                if not locked:
                    return total
                result = await session.execute(
                    _PRUNE, {"keep": self.retention, "limit": self.batch}
                )
            deleted = int(result.rowcount)  # type: ignore[attr-defined]
            total += deleted
            metrics.INBOX_PRUNED.labels(self.db.schema).inc(deleted)
            if deleted < self.batch:
                return total
