"""Queries on the ingress tables; every function runs inside the caller's transaction."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from baton_ingress.db.models import webhooks
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


# One statement text whatever the batch size (arrays, not VALUES lists): prepared once per
# connection. Keys are sorted so that two workers claiming overlapping keys lock them in the
# same order. ON CONFLICT DO NOTHING also absorbs a key repeated inside one statement.
_CLAIM_INBOX = text(
    "INSERT INTO inbox (consumer, event_id) "
    "SELECT :consumer, unnest(CAST(:event_ids AS uuid[])) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)
_ARCHIVE = text(
    "INSERT INTO webhooks (body_sha256, event_id, received_at, signature, body) "
    "SELECT * FROM unnest(CAST(:digests AS text[]), CAST(:event_ids AS uuid[]), "
    "CAST(:received_at AS timestamptz[]), CAST(:signatures AS text[]), CAST(:bodies AS text[])) "
    "ON CONFLICT DO NOTHING"
)
_CLAIM_MESSAGES = text(
    "INSERT INTO seen_messages (message_id, phone_number_id) "
    "SELECT * FROM unnest(CAST(:message_ids AS text[]), CAST(:phone_number_ids AS text[])) "
    "ON CONFLICT DO NOTHING RETURNING message_id"
)
_CLAIM_STATUSES = text(
    "INSERT INTO seen_statuses (message_id, status) "
    "SELECT * FROM unnest(CAST(:message_ids AS text[]), CAST(:statuses AS text[])) "
    "ON CONFLICT DO NOTHING RETURNING message_id, status"
)


async def claim_inbox_many(
    session: AsyncSession, consumer: str, event_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Record event ids as processed by `consumer`; returns those never processed before."""
    if not event_ids:
        return set()
    ids = sorted(set(event_ids))
    rows = await session.execute(_CLAIM_INBOX, {"consumer": consumer, "event_ids": ids})
    return {row.event_id for row in rows}


async def archive_webhooks(session: AsyncSession, events: Sequence[WebhookReceived]) -> None:
    """Store each raw body with its arrival time (a body archived before is left as it was)."""
    if not events:
        return
    by_digest = {body_digest(e.payload.body): e for e in events}
    digests = sorted(by_digest)
    chosen = [by_digest[d] for d in digests]
    await session.execute(
        _ARCHIVE,
        {
            "digests": digests,
            "event_ids": [e.event_id for e in chosen],
            "received_at": [e.payload.received_at for e in chosen],
            "signatures": [e.payload.signature for e in chosen],
            "bodies": [e.payload.body for e in chosen],
        },
    )


async def claim_messages(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> set[str]:
    """Record (message id, phone number id) pairs; returns the message ids never seen before."""
    if not keys:
        return set()
    pairs = sorted(dict(keys).items())
    params = {
        "message_ids": [m for m, _ in pairs],
        "phone_number_ids": [p for _, p in pairs],
    }
    return set((await session.scalars(_CLAIM_MESSAGES, params)).all())


async def claim_statuses(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Record (message id, status) pairs; returns the pairs never seen before."""
    if not keys:
        return set()
    pairs = sorted(set(keys))
    params = {"message_ids": [m for m, _ in pairs], "statuses": [s for _, s in pairs]}
    return {(r.message_id, r.status) for r in (await session.execute(_CLAIM_STATUSES, params))}


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
