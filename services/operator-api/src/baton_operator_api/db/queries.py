"""Read-side queries: the needs-attention queue and the numbers behind `/stats`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from baton_operator_api.db.models import conversations as c
from baton_operator_api.db.models import messages as m
from baton_operator_api.db.repo import CONVERSATION_COLUMNS, needs_attention
from baton_shared.events import Mode, utcnow


async def queue(
    session: AsyncSession,
    *,
    mode: str | None = None,
    attention: bool | None = None,
    operator: str | None = None,
    updated_since: datetime | None = None,
    limit: int = 50,
) -> list[Row[Any]]:
    """Conversations matching the filters, the longest-waiting customer first."""
    query = select(*CONVERSATION_COLUMNS)
    if mode is not None:
        query = query.where(c.c.mode == mode)
    if attention is not None:
        query = query.where(needs_attention if attention else ~needs_attention)
    if operator is not None:
        query = query.where(c.c.operator == operator)
    if updated_since is not None:
        query = query.where(c.c.updated_at >= updated_since)
    query = query.order_by(
        c.c.waiting_since.asc().nulls_last(), c.c.last_message_at.desc().nulls_last(), c.c.id
    )
    return list((await session.execute(query.limit(limit))).all())


async def stats(session: AsyncSession) -> dict[str, Any]:
    """Conversations by mode, waiting handoffs and their age, today's messages, AI latency."""
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    by_mode = {
        row.mode: row.n
        for row in await session.execute(
            select(c.c.mode, func.count().label("n")).group_by(c.c.mode)
        )
    }
    pending = (
        await session.execute(
            select(func.count(), func.min(func.coalesce(c.c.waiting_since, c.c.updated_at))).where(
                c.c.mode == Mode.PENDING_HUMAN.value
            )
        )
    ).one()
    today_counts = {
        row.direction: row.n
        for row in await session.execute(
            select(m.c.direction, func.count().label("n"))
            .where(m.c.occurred_at >= today)
            .group_by(m.c.direction)
        )
    }
    p50, p95 = (
        await session.execute(
            select(
                func.percentile_cont(0.5).within_group(m.c.latency_ms),
                func.percentile_cont(0.95).within_group(m.c.latency_ms),
            ).where(m.c.latency_ms.is_not(None), m.c.occurred_at >= today)
        )
    ).one()
    oldest = pending[1]
    return {
        "conversations_by_mode": {
            mode.value: by_mode.get(mode.value, 0) for mode in Mode if mode != Mode.UNKNOWN
        },
        "handoffs_waiting": pending[0],
        "oldest_handoff_seconds": (now - oldest).total_seconds() if oldest else None,
        "messages_today": {"in": today_counts.get("in", 0), "out": today_counts.get("out", 0)},
        "ai_latency_ms": {"p50": p50, "p95": p95},
    }
