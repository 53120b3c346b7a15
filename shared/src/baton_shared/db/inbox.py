"""Inbox: remember processed event ids so a redelivered event changes nothing."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_shared.db.tables import inbox


async def claim_inbox(session: AsyncSession, consumer: str, event_id: uuid.UUID) -> bool:
    """Record `event_id` as processed by `consumer` in this transaction.

    Returns False when it was processed before: the caller then does nothing. Because the
    row commits with the caller's own changes, a crash before commit leaves no trace.
    """
    stmt = (
        insert(inbox)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    return (await session.execute(stmt)).first() is not None
