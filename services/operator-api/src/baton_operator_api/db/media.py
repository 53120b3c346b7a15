"""Customer media downloads: record, claim (several replicas), finish, and read for serving."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_operator_api.db.models import media as md
from baton_shared.db import Database

log = logging.getLogger(__name__)

PENDING, DOWNLOADING, DOWNLOADED, FAILED = "pending", "downloading", "downloaded", "failed"
EXPIRED = "expired"  # downloaded, then its bytes deleted after the retention period
# The partial index's predicate as a literal (see transcript.py on generic plans).
DUE = md.c.status.in_([literal_column("'pending'"), literal_column("'downloading'")])


@dataclass(frozen=True, slots=True)
class Claim:
    """A download this worker holds until it finishes it or its lease ends.

    Attributes:
        media_id: WhatsApp media id.
        claim_id: proves the claim is still ours when the result is written.
        kind: message type (image, audio, video, document, sticker).
        mime_type: the type the webhook announced.
        filename: the customer's filename (documents).
        webhook_sha256: the checksum the webhook announced (base64).
        attempts: tries so far, this one included.
    """

    media_id: str
    claim_id: uuid.UUID
    kind: str
    mime_type: str | None
    filename: str | None
    webhook_sha256: str | None
    attempts: int


async def add_pending(
    session: AsyncSession,
    *,
    media_id: str,
    conversation_id: str,
    wa_message_id: str,
    kind: str,
    voice: bool,
    mime_type: str | None,
    filename: str | None,
    webhook_sha256: str | None,
) -> None:
    """Record a download to do, once per media id."""
    stmt = insert(md).values(
        media_id=media_id,
        conversation_id=conversation_id,
        wa_message_id=wa_message_id,
        kind=kind,
        voice=voice,
        mime_type=mime_type,
        filename=filename,
        webhook_sha256=webhook_sha256,
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=[md.c.media_id]))


async def claim(session: AsyncSession, limit: int, lease: timedelta) -> list[Claim]:
    """Claim up to `limit` due downloads (pending, or claimed by a worker whose lease ended),
    skipping rows another replica is claiming right now."""
    due = (
        select(md.c.media_id)
        .where(DUE, md.c.due_at <= func.now())
        .order_by(md.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claim_id = uuid.uuid4()
    stmt = (
        update(md)
        .where(md.c.media_id.in_(due))
        .values(
            status=DOWNLOADING,
            claim_id=claim_id,
            attempts=md.c.attempts + 1,
            due_at=func.now() + lease,
            updated_at=func.now(),
        )
        .returning(
            md.c.media_id,
            md.c.kind,
            md.c.mime_type,
            md.c.filename,
            md.c.webhook_sha256,
            md.c.attempts,
        )
    )
    rows = (await session.execute(stmt)).all()
    return [
        Claim(r.media_id, claim_id, r.kind, r.mime_type, r.filename, r.webhook_sha256, r.attempts)
        for r in rows
    ]


def _ours(item: Claim) -> Any:
    return (
        (md.c.media_id == item.media_id)
        & (md.c.claim_id == item.claim_id)
        & (md.c.status == DOWNLOADING)
    )


async def finish(
    session: AsyncSession,
    item: Claim,
    *,
    content: bytes,
    mime_type: str,
    sha256: str,
    filename: str,
) -> bool:
    """Store the bytes and mark the download done; False when the claim was lost meanwhile."""
    stmt = (
        update(md)
        .where(_ours(item))
        .values(
            status=DOWNLOADED,
            content=content,
            mime_type=mime_type,
            sha256=sha256,
            size=len(content),
            filename=filename,
            reason=None,
            claim_id=None,
            downloaded_at=func.now(),
            updated_at=func.now(),
        )
    )
    return (await session.execute(stmt.returning(md.c.media_id))).first() is not None


async def retry_later(session: AsyncSession, item: Claim, *, delay: float, reason: str) -> bool:
    """Put the download back to `pending`, due after `delay` seconds, noting why."""
    stmt = (
        update(md)
        .where(_ours(item))
        .values(
            status=PENDING,
            claim_id=None,
            reason=reason,
            due_at=func.now() + timedelta(seconds=delay),
            updated_at=func.now(),
        )
    )
    return (await session.execute(stmt.returning(md.c.media_id))).first() is not None


async def fail(session: AsyncSession, item: Claim, *, reason: str) -> bool:
    """Mark the download failed for good, with the reason operators see."""
    stmt = (
        update(md)
        .where(_ours(item))
        .values(status=FAILED, claim_id=None, reason=reason, updated_at=func.now())
    )
    return (await session.execute(stmt.returning(md.c.media_id))).first() is not None


async def get(session: AsyncSession, media_id: str, *, content: bool = False) -> Row[Any] | None:
    """A media row (with its bytes when `content`), or None."""
    columns = [c for c in md.c if content or c.name != "content"]
    return (await session.execute(select(*columns).where(md.c.media_id == media_id))).first()


# Oldest first, a bounded number per statement, so no statement holds locks for long.
_EXPIRE = text(
    "UPDATE media SET status = 'expired', content = NULL, updated_at = now() "
    "WHERE media_id = ANY(ARRAY(SELECT media_id FROM media WHERE status = 'downloaded' "
    "AND downloaded_at < now() - CAST(:keep AS interval) ORDER BY downloaded_at LIMIT :limit))"
)


async def expire(session: AsyncSession, keep: timedelta, limit: int = 500) -> int:
    """Delete the bytes of up to `limit` media downloaded longer than `keep` ago (their rows
    stay, `expired`); returns how many."""
    result = await session.execute(_EXPIRE, {"keep": keep, "limit": limit})
    return int(getattr(result, "rowcount", 0) or 0)


async def expire_all(db: Database, keep: timedelta) -> int:
    """Expire every media item older than `keep`, one bounded transaction at a time."""
    total = 0
    while True:
        async with db.session() as session:
            done = await expire(session, keep)
        total += done
        if done < 500:
            if total:
                log.info("deleted the bytes of %d customer media older than %s", total, keep)
            return total
