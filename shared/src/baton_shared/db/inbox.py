"""Inbox: remember processed event ids so a redelivered event changes nothing; forget them
once no redelivery can come any more."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_shared.db.engine import Database
from baton_shared.db.retention import Pruner, oldest_first
from baton_shared.db.tables import inbox


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


# Inbox rows are appended in time order, so the old ones are found at the start of the heap.
INBOX_RULE = oldest_first("inbox", "processed_at")


class InboxPruner(Pruner):
    """Deletes inbox rows older than the retention (`worker()` runs it every hour).

    An event comes back only while its entry is pending (a crash before the ack) or when
    someone re-publishes it (publish-once markers last 7 days) or re-drives it from a DLQ;
    the retention must outlast all three. The first round runs one interval after start, so
    a service back from a long outage handles its pending entries against a full inbox.
    """

    def __init__(self, db: Database, *, retention: timedelta, batch: int = 10_000) -> None:
        super().__init__(db, [INBOX_RULE], retention=retention, name="InboxPruner", batch=batch)

    async def prune_inbox(self) -> int:
        """Delete every inbox row older than the retention; how many."""
        return await self.prune_table(INBOX_RULE)
