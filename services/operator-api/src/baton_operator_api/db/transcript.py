"""The transcript read model: customer, AI and operator messages with delivery status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, case, func, literal_column, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_operator_api.db.models import media as md
from baton_operator_api.db.models import messages as m

# The partial unique indexes' predicates, as SQL literals: with a bound parameter, PostgreSQL
# cannot match ON CONFLICT to the index once a reused connection's prepared statement switches
# to its generic plan (after five executions), and every upsert then fails.
INBOUND = m.c.direction == literal_column("'in'")
OUTBOUND = m.c.direction == literal_column("'out'")

MEDIA_COLUMNS = (
    md.c.kind.label("media_kind"),
    md.c.status.label("media_status"),
    md.c.reason.label("media_reason"),
    md.c.mime_type.label("media_mime_type"),
    md.c.filename.label("media_filename"),
    md.c.voice.label("media_voice"),
    md.c.size.label("media_size"),
)

# Earlier than any message: where paging after a message that is gone starts.
_BEGINNING: ColumnElement[datetime] = literal_column("'-infinity'::timestamptz")

# Delivery status only moves forward; failed and suppressed are final. A failure with reason
# `outcome_unknown` is not: the sender could not tell whether WhatsApp took the message (it
# stopped mid-call) and did not send it again, so WhatsApp's own statuses, sent or failed, may
# still come and must replace it, or the operator would be told to send it again when the
# customer already has it.
STATUS_RANK = {
    "requested": 0,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "played": 5,  # a voice message first played
    "failed": 6,
    "suppressed": 6,
}
UNKNOWN_OUTCOME_RANK = 1  # above requested, below anything WhatsApp reports
OUTCOME_UNKNOWN = "outcome_unknown"
FINAL = ("failed", "suppressed")


def status_rank(status: str, reason: str | None = None) -> int:
    """Where a status stands in the order statuses may move in (-1: unknown status)."""
    if status == "failed" and reason == OUTCOME_UNKNOWN:
        return UNKNOWN_OUTCOME_RANK
    return STATUS_RANK.get(status, -1)


async def add_inbound(
    session: AsyncSession,
    conversation_id: str,
    *,
    wa_message_id: str,
    kind: str,
    text: str | None,
    at: datetime,
    media_id: str | None = None,
) -> bool:
    """Record a customer message once per WhatsApp id; False when it was already there."""
    stmt = (
        insert(m)
        .values(
            conversation_id=conversation_id,
            direction="in",
            author="customer",
            kind=kind,
            text=text,
            wa_message_id=wa_message_id,
            status="received",
            occurred_at=at,
            media_id=media_id,
        )
        .on_conflict_do_nothing(index_elements=[m.c.wa_message_id], index_where=INBOUND)
        .returning(m.c.id)
    )
    return (await session.execute(stmt)).first() is not None


async def upsert_outbound(
    session: AsyncSession,
    conversation_id: str,
    *,
    command_id: str,
    author: str,
    kind: str,
    status: str,
    at: datetime,
    text: str | None = None,
    wa_message_id: str | None = None,
    reason: str | None = None,
    error_code: int | None = None,
    error: str | None = None,
    operator: str | None = None,
    latency_ms: int | None = None,
) -> None:
    """Record an outbound message or move its status forward (never backward); WhatsApp's
    status for a message failed as `outcome_unknown` replaces that failure, reason and error
    included."""
    rank = status_rank(status, reason)
    stmt = insert(m).values(
        conversation_id=conversation_id,
        direction="out",
        author=author,
        kind=kind,
        text=text,
        command_id=command_id,
        wa_message_id=wa_message_id,
        status=status,
        status_rank=max(rank, 0),
        reason=reason,
        error_code=error_code,
        error=error,
        operator=operator,
        latency_ms=latency_ms,
        occurred_at=at,
    )
    ex = stmt.excluded
    newer = ex.status_rank > m.c.status_rank
    # What an earlier failure said no longer holds: a status past it, or WhatsApp's own
    # verdict on a message whose outcome was unknown.
    healed = newer & (ex.status.not_in(FINAL) | (m.c.status_rank == UNKNOWN_OUTCOME_RANK))
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[m.c.command_id],
            index_where=OUTBOUND,
            set_={
                "status": case((newer, ex.status), else_=m.c.status),
                "status_rank": func.greatest(m.c.status_rank, ex.status_rank),
                "reason": case(
                    (healed, ex.reason),
                    (newer, func.coalesce(ex.reason, m.c.reason)),
                    else_=m.c.reason,
                ),
                "error_code": case(
                    (healed, ex.error_code),
                    (newer, func.coalesce(ex.error_code, m.c.error_code)),
                    else_=m.c.error_code,
                ),
                "error": case(
                    (healed, ex.error),
                    (newer, func.coalesce(ex.error, m.c.error)),
                    else_=m.c.error,
                ),
                "wa_message_id": func.coalesce(m.c.wa_message_id, ex.wa_message_id),
                "text": func.coalesce(m.c.text, ex.text),
                "author": case((m.c.author == "unknown", ex.author), else_=m.c.author),
                "operator": func.coalesce(m.c.operator, ex.operator),
                "latency_ms": func.coalesce(m.c.latency_ms, ex.latency_ms),
                # A message's place in the transcript is when it first happened (an operator's
                # message when written, an AI one when sent), whichever report came first.
                "occurred_at": func.least(m.c.occurred_at, ex.occurred_at),
                "updated_at": func.now(),
            },
        )
    )


async def has_outbound(session: AsyncSession, command_id: str) -> bool:
    """Whether an outbound message with this command id is in the transcript."""
    found = await session.scalar(
        select(m.c.id).where(m.c.command_id == command_id, OUTBOUND).limit(1)
    )
    return found is not None


async def page(
    session: AsyncSession,
    conversation_id: str,
    *,
    after: int = 0,
    before: int | None = None,
    limit: int,
) -> list[Row[Any]]:
    """Up to `limit` messages of a conversation, in the order they happened (`occurred_at`,
    then the order they were recorded in), each with its media's download state
    (`media_status`, `media_*` columns; None without media): those just after message `after`
    (0: from the oldest), or, when `before` is given, those just before message `before`
    (0: the newest). An id that names no message of this conversation, such as one deleted
    by retention, counts as older than every message kept.

    Recording order is not enough: the operator-api reads customer messages and outbound
    results from two streams, and when one lags an answer would be listed above the message
    it answers."""
    where = [m.c.conversation_id == conversation_id]
    position = tuple_(m.c.occurred_at, m.c.id)
    newest_first = before is not None
    cursor = before if newest_first else after
    if cursor:
        # The cursor message's time; NULL when it is not one of the conversation's.
        at = (
            select(m.c.occurred_at)
            .where(m.c.id == cursor, m.c.conversation_id == conversation_id)
            .scalar_subquery()
        )
        if newest_first:  # NULL: nothing kept is older than a message that is gone
            where.append(position < tuple_(at, cursor))
        else:  # NULL: everything kept is newer
            where.append(position > tuple_(func.coalesce(at, _BEGINNING), cursor))
    query = (
        select(m, *MEDIA_COLUMNS)
        .select_from(m.outerjoin(md, md.c.media_id == m.c.media_id))
        .where(*where)
        .order_by(*(c.desc() if newest_first else c for c in (m.c.occurred_at, m.c.id)))
        .limit(limit)
    )
    rows = list((await session.execute(query)).all())
    return rows[::-1] if newest_first else rows
