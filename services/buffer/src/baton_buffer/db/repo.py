"""Queries on the buffer's tables; every function runs inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_buffer.db.models import conversations, messages, turns
from baton_shared.events import MessageReceived


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the timers of one conversation depend on.

    Attributes:
        in_flight_since: when the turn in flight was released (epoch seconds), if any.
        arrivals: arrival times of the pending messages (epoch seconds), in arrival order.
    """

    in_flight_since: float | None
    arrivals: list[float]


async def record_message(
    session: AsyncSession, event: MessageReceived, conversation_id: str, arrived_at: datetime
) -> bool:
    """Record an inbound message once; False when its WhatsApp id was recorded before."""
    message = event.payload
    await session.execute(
        insert(conversations)
        .values(
            conversation_id=conversation_id,
            phone_number_id=message.phone_number_id,
            customer_id=message.customer_id,
        )
        .on_conflict_do_nothing()
    )
    inserted = await session.execute(
        insert(messages)
        .values(
            message_id=message.message_id,
            conversation_id=conversation_id,
            type=message.type.value,
            wa_timestamp=message.timestamp,
            arrived_at=arrived_at,
            event_id=event.event_id,
            correlation_id=event.correlation_id,
            traceparent=event.traceparent,
            payload=message.model_dump(mode="json"),
        )
        .on_conflict_do_nothing()
        .returning(messages.c.message_id)
    )
    return inserted.first() is not None


async def schedule_state(session: AsyncSession, conversation_id: str) -> ScheduleState:
    """The in-flight turn and pending arrivals of one conversation."""
    since = await session.scalar(
        select(conversations.c.in_flight_since).where(
            conversations.c.conversation_id == conversation_id
        )
    )
    arrivals = await session.scalars(
        select(messages.c.arrived_at)
        .where(messages.c.conversation_id == conversation_id, messages.c.turn_id.is_(None))
        .order_by(messages.c.arrival_seq)
    )
    return ScheduleState(since.timestamp() if since else None, [a.timestamp() for a in arrivals])


async def open_schedule_states(session: AsyncSession) -> dict[str, ScheduleState]:
    """Schedule states of every conversation with a turn in flight or messages pending."""
    pending = (
        select(
            messages.c.conversation_id,
            func.array_agg(
                literal_column("messages.arrived_at ORDER BY messages.arrival_seq")
            ).label("arrivals"),
        )
        .where(messages.c.turn_id.is_(None))
        .group_by(messages.c.conversation_id)
        .subquery()
    )
    rows = await session.execute(
        select(conversations.c.conversation_id, conversations.c.in_flight_since, pending.c.arrivals)
        .select_from(
            conversations.outerjoin(
                pending, pending.c.conversation_id == conversations.c.conversation_id
            )
        )
        .where(or_(conversations.c.in_flight_turn_id.is_not(None), pending.c.arrivals.is_not(None)))
    )
    return {
        row.conversation_id: ScheduleState(
            row.in_flight_since.timestamp() if row.in_flight_since else None,
            [a.timestamp() for a in row.arrivals or []],
        )
        for row in rows
    }


async def lock_conversation(session: AsyncSession, conversation_id: str) -> Row[Any] | None:
    """The conversation's row, locked until the transaction ends (serialises its turns)."""
    result = await session.execute(
        select(conversations)
        .where(conversations.c.conversation_id == conversation_id)
        .with_for_update()
    )
    return result.first()


async def pending_messages(session: AsyncSession, conversation_id: str) -> Sequence[Row[Any]]:
    """The conversation's messages not yet in a turn, by WhatsApp timestamp then arrival."""
    result = await session.execute(
        select(messages)
        .where(messages.c.conversation_id == conversation_id, messages.c.turn_id.is_(None))
        .order_by(messages.c.wa_timestamp, messages.c.arrival_seq)
    )
    return result.all()


async def open_turn(
    session: AsyncSession,
    conversation_id: str,
    *,
    turn_id: uuid.UUID,
    sequence: int,
    closed_by: str,
    message_ids: Sequence[str],
    at: datetime,
) -> None:
    """Record a released turn, assign its messages, and mark it in flight."""
    await session.execute(
        turns.insert().values(
            turn_id=turn_id,
            conversation_id=conversation_id,
            sequence=sequence,
            closed_by=closed_by,
            message_count=len(message_ids),
            released_at=at,
        )
    )
    assigned = await session.execute(
        update(messages)
        .where(messages.c.message_id.in_(message_ids), messages.c.turn_id.is_(None))
        .values(turn_id=turn_id)
    )
    if assigned.rowcount != len(message_ids):  # type: ignore[attr-defined]
        raise RuntimeError(f"turn {turn_id}: messages were assigned concurrently")
    await session.execute(
        update(conversations)
        .where(conversations.c.conversation_id == conversation_id)
        .values(last_sequence=sequence, in_flight_turn_id=turn_id, in_flight_since=at)
    )


async def time_out_turn(
    session: AsyncSession, conversation_id: str, turn_id: uuid.UUID, at: datetime
) -> None:
    """Give up on the turn in flight: mark it timed out and free the conversation."""
    await session.execute(update(turns).where(turns.c.turn_id == turn_id).values(timed_out_at=at))
    await session.execute(
        update(conversations)
        .where(conversations.c.conversation_id == conversation_id)
        .values(in_flight_turn_id=None, in_flight_since=None)
    )


@dataclass(frozen=True, slots=True)
class Completion:
    """What recording a turn's completion changed.

    Attributes:
        conversation_id: the turn's conversation.
        first_report: False when the completion was recorded before (a redelivery).
    """

    conversation_id: str
    first_report: bool


async def complete_turn(
    session: AsyncSession, turn_id: uuid.UUID, outcome: str, at: datetime
) -> Completion | None:
    """Record the agent's report on a turn and free its conversation if the turn is in flight.

    Returns None for a turn this buffer never released.
    """
    conversation_id = await session.scalar(
        select(turns.c.conversation_id).where(turns.c.turn_id == turn_id)
    )
    if conversation_id is None:
        return None
    await lock_conversation(session, conversation_id)
    recorded = await session.execute(
        update(turns)
        .where(turns.c.turn_id == turn_id, turns.c.completed_at.is_(None))
        .values(completed_at=at, outcome=outcome)
    )
    await session.execute(
        update(conversations)
        .where(
            and_(
                conversations.c.conversation_id == conversation_id,
                conversations.c.in_flight_turn_id == turn_id,
            )
        )
        .values(in_flight_turn_id=None, in_flight_since=None)
    )
    return Completion(str(conversation_id), bool(recorded.rowcount))  # type: ignore[attr-defined]
