"""Queries on the sender's tables; every function runs inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_sender.db.models import messages, windows
from baton_sender.status import Status

# The head of each customer's pending list is the only message of that customer that may be
# claimed, and only while it is queued and due: one in flight per customer, in `seq` order.
# It walks queued messages in `seq` order (index `messages_queued`) and checks each has no
# earlier pending message (index `messages_pending`), so its cost follows what it claims, not
# the size of the backlog.
_CLAIM_HEADS = text("""
UPDATE messages m
SET status = 'claimed', lease_until = now() + make_interval(secs => :lease), updated_at = now()
WHERE m.seq IN (
    SELECT q.seq FROM messages q
    WHERE q.status = 'queued' AND (q.not_before IS NULL OR q.not_before <= now())
    AND NOT EXISTS (
        SELECT 1 FROM messages p
        WHERE p.phone_number_id = q.phone_number_id AND p.recipient = q.recipient
        AND p.status IN ('queued', 'claimed', 'calling') AND p.seq < q.seq
    )
    ORDER BY q.seq
    LIMIT :limit
    FOR UPDATE OF q SKIP LOCKED
) AND m.status = 'queued'
RETURNING m.*, (
    SELECT w.last_inbound_at FROM windows w
    WHERE w.phone_number_id = m.phone_number_id AND w.customer = m.recipient
) AS last_inbound_at
""")


async def add_messages(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert queued messages; a (command_id, part) already recorded is skipped. Returns new."""
    stmt = (
        insert(messages).values(rows).on_conflict_do_nothing(index_elements=["command_id", "part"])
    )
    result = await session.execute(stmt.returning(messages.c.seq))
    return len(result.all())


async def claim_heads(session: AsyncSession, limit: int, lease_seconds: float) -> list[Row[Any]]:
    """Claim up to `limit` due messages, at most one per customer, oldest first.

    Each row carries the message and `last_inbound_at` (the customer's window), so sending it
    needs no further read."""
    result = await session.execute(_CLAIM_HEADS, {"limit": limit, "lease": lease_seconds})
    return sorted(result.all(), key=lambda row: int(row.seq))


async def get(session: AsyncSession, seq: int, *, lock: bool = False) -> Row[Any] | None:
    """One message by seq, optionally locked for update."""
    stmt = select(messages).where(messages.c.seq == seq)
    return (await session.execute(stmt.with_for_update() if lock else stmt)).first()


async def get_by_command(session: AsyncSession, command_id: str) -> list[Row[Any]]:
    """Every part of one command, in order."""
    stmt = select(messages).where(messages.c.command_id == command_id).order_by(messages.c.part)
    return list((await session.execute(stmt)).all())


async def set_fields(session: AsyncSession, seq: int, **values: Any) -> None:
    """Update one message (and its `updated_at`)."""
    await session.execute(
        update(messages).where(messages.c.seq == seq).values(updated_at=func.now(), **values)
    )


async def find_sent(
    session: AsyncSession, wa_message_id: str, callback: tuple[str, int] | None
) -> Row[Any] | None:
    """The message a status webhook is about, locked: by wamid, else by our callback data."""
    stmt = select(messages).where(messages.c.wa_message_id == wa_message_id).with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None and callback is not None:
        stmt = (
            select(messages)
            .where(messages.c.command_id == callback[0], messages.c.part == callback[1])
            .with_for_update()
        )
        row = (await session.execute(stmt)).first()
    return row


async def release_stale_claims(session: AsyncSession) -> int:
    """Put back claimed messages whose worker died before calling WhatsApp; returns count."""
    stmt = (
        update(messages)
        .where(messages.c.status == Status.CLAIMED, messages.c.lease_until < func.now())
        .values(status=Status.QUEUED, lease_until=None, updated_at=func.now())
    )
    result = await session.execute(stmt.returning(messages.c.seq))
    return len(result.all())


async def stale_calls(session: AsyncSession) -> list[Row[Any]]:
    """Messages whose worker died during the call (outcome unknown), locked."""
    stmt = (
        select(messages)
        .where(messages.c.status == Status.CALLING, messages.c.lease_until < func.now())
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).all())


async def touch_window(
    session: AsyncSession, phone_number_id: str, customer: str, at: datetime
) -> None:
    """Record an inbound message: the customer's window runs from the latest one."""
    stmt = insert(windows).values(
        phone_number_id=phone_number_id, customer=customer, last_inbound_at=at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["phone_number_id", "customer"],
        set_={"last_inbound_at": func.greatest(windows.c.last_inbound_at, at)},
    )
    await session.execute(stmt)


async def last_inbound(
    session: AsyncSession, phone_number_id: str, customer: str
) -> datetime | None:
    """When the customer last wrote to this business number, if ever."""
    stmt = select(windows.c.last_inbound_at).where(
        windows.c.phone_number_id == phone_number_id, windows.c.customer == customer
    )
    return (await session.execute(stmt)).scalar_one_or_none()
