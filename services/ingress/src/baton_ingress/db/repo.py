"""Queries on the ingress tables; every function runs inside the caller's transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_ingress.db.models import seen_messages, seen_statuses, webhooks
from baton_shared.events import WebhookReceived


@dataclass(frozen=True, slots=True)
class ArchivedWebhook:
    """One archived body.

    Attributes:
        id: archive order.
        body: the raw body as signed.
        signature: the signature header it arrived with.
        received_at: when ingress first accepted it.
    """

    id: int
    body: str
    signature: str
    received_at: datetime


def body_digest(body: str) -> str:
    """The archive key of a body: SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(body.encode()).hexdigest()


async def archive_webhook(session: AsyncSession, event: WebhookReceived) -> bool:
    """Store the raw body with its arrival time; False when this body was archived before."""
    stmt = (
        insert(webhooks)
        .values(
            body_sha256=body_digest(event.payload.body),
            event_id=event.event_id,
            received_at=event.payload.received_at,
            signature=event.payload.signature,
            body=event.payload.body,
        )
        .on_conflict_do_nothing()
        .returning(webhooks.c.id)
    )
    return (await session.execute(stmt)).first() is not None


async def claim_messages(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> set[str]:
    """Record (message id, phone number id) pairs; returns the message ids never seen before."""
    if not keys:
        return set()
    rows = [{"message_id": m, "phone_number_id": p} for m, p in dict(keys).items()]
    stmt = (
        insert(seen_messages)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(seen_messages.c.message_id)
    )
    return set((await session.scalars(stmt)).all())


async def claim_statuses(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Record (message id, status) pairs; returns the pairs never seen before."""
    if not keys:
        return set()
    rows = [{"message_id": m, "status": s} for m, s in dict.fromkeys(keys)]
    stmt = (
        insert(seen_statuses)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(seen_statuses.c.message_id, seen_statuses.c.status)
    )
    return {(r.message_id, r.status) for r in (await session.execute(stmt)).all()}


async def archived_since(
    session: AsyncSession, since: datetime, until: datetime | None, after_id: int, limit: int
) -> list[ArchivedWebhook]:
    """Archived bodies received in [since, until), in archive order, after `after_id`."""
    stmt = (
        select(webhooks.c.id, webhooks.c.body, webhooks.c.signature, webhooks.c.received_at)
        .where(webhooks.c.received_at >= since, webhooks.c.id > after_id)
        .order_by(webhooks.c.id)
        .limit(limit)
    )
    if until is not None:
        stmt = stmt.where(webhooks.c.received_at < until)
    return [ArchivedWebhook(*row) for row in (await session.execute(stmt)).all()]
