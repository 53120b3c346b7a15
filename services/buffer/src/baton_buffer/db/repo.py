"""Queries on the buffer's tables; every function runs inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    String,
    column,
    func,
    literal_column,
    or_,
    select,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
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
    recorded = await record_messages(session, [(event, conversation_id)], arrived_at)
    return event.payload.message_id in recorded


async def record_messages(
    session: AsyncSession,
    items: Sequence[tuple[MessageReceived, str]],
    arrived_at: datetime,
) -> set[str]:
    """Record inbound messages (with their conversation ids) once each, in the given order
    (their arrival order); returns the WhatsApp ids recorded now (not recorded before)."""
    if not items:
        return set()
    convs: dict[str, dict[str, Any]] = {}
    for event, conversation_id in items:
        convs.setdefault(
            conversation_id,
            {
                "conversation_id": conversation_id,
                "phone_number_id": event.payload.phone_number_id,
                "customer_id": event.payload.customer_id,
            },
        )
    # In key order, so replicas inserting the same conversations cannot deadlock.
    await session.execute(
        insert(conversations).values([convs[c] for c in sorted(convs)]).on_conflict_do_nothing()
    )
    # One statement: rows get their arrival sequence in list order.
    inserted = await session.execute(
        insert(messages)
        .values(
            [
                {
                    "message_id": event.payload.message_id,
                    "conversation_id": conversation_id,
                    "type": event.payload.type.value,
                    "wa_timestamp": event.payload.timestamp,
                    "arrived_at": arrived_at,
                    "event_id": event.event_id,
                    "correlation_id": event.correlation_id,
                    "traceparent": event.traceparent,
                    "payload": event.payload.model_dump(mode="json"),
                }
                for event, conversation_id in items
            ]
        )
        .on_conflict_do_nothing()
        .returning(messages.c.message_id)
    )
    return set(inserted.scalars())


async def schedule_state(session: AsyncSession, conversation_id: str) -> ScheduleState:
    """The in-flight turn and pending arrivals of one conversation."""
    states = await schedule_states(session, [conversation_id])
    return states.get(conversation_id, ScheduleState(None, []))


async def schedule_states(
    session: AsyncSession, conversation_ids: Sequence[str]
) -> dict[str, ScheduleState]:
    """The in-flight turn and pending arrivals of each of these conversations (known ones)."""
    if not conversation_ids:
        return {}
    ids = sorted(set(conversation_ids))
    return await _schedule_states(
        session,
        pending_where=messages.c.conversation_id.in_(ids),
        where=conversations.c.conversation_id.in_(ids),
    )


async def open_schedule_states(session: AsyncSession) -> dict[str, ScheduleState]:
    """Schedule states of every conversation with a turn in flight or messages pending."""
    return await _schedule_states(session, pending_where=None, where=None)


async def _schedule_states(
    session: AsyncSession,
    *,
    pending_where: ColumnElement[bool] | None,
    where: ColumnElement[bool] | None,
) -> dict[str, ScheduleState]:
    """Schedule states of the conversations matching `where` (None: every open one)."""
    pending_query = select(
        messages.c.conversation_id,
        func.array_agg(literal_column("messages.arrived_at ORDER BY messages.arrival_seq")).label(
            "arrivals"
        ),
    ).where(messages.c.turn_id.is_(None))
    if pending_where is not None:
        pending_query = pending_query.where(pending_where)
    pending = pending_query.group_by(messages.c.conversation_id).subquery()
    query = select(
        conversations.c.conversation_id, conversations.c.in_flight_since, pending.c.arrivals
    ).select_from(
        conversations.outerjoin(
            pending, pending.c.conversation_id == conversations.c.conversation_id
        )
    )
    if where is None:
        query = query.where(
            or_(conversations.c.in_flight_turn_id.is_not(None), pending.c.arrivals.is_not(None))
        )
    else:
        query = query.where(where)
    rows = await session.execute(query)
    return {
        row.conversation_id: ScheduleState(
            row.in_flight_since.timestamp() if row.in_flight_since else None,
            [a.timestamp() for a in row.arrivals or []],
        )
        for row in rows
    }


async def lock_conversations(
    session: AsyncSession, conversation_ids: Sequence[str]
) -> dict[str, Row[Any]]:
    """The conversations' rows, locked (in key order) until the transaction ends."""
    if not conversation_ids:
        return {}
    result = await session.execute(
        select(conversations)
        .where(conversations.c.conversation_id.in_(sorted(set(conversation_ids))))
        .order_by(conversations.c.conversation_id)
        .with_for_update()
    )
    return {row.conversation_id: row for row in result}


async def pending_messages_of(
    session: AsyncSession, conversation_ids: Sequence[str]
) -> dict[str, list[Row[Any]]]:
    """`pending_messages` of each of these conversations (those with any)."""
    if not conversation_ids:
        return {}
    result = await session.execute(
        select(messages)
        .where(messages.c.conversation_id.in_(conversation_ids), messages.c.turn_id.is_(None))
        .order_by(messages.c.conversation_id, messages.c.wa_timestamp, messages.c.arrival_seq)
    )
    out: dict[str, list[Row[Any]]] = {}
    for row in result:
        out.setdefault(row.conversation_id, []).append(row)
    return out


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


@dataclass(frozen=True, slots=True)
class NewTurn:
    """A turn about to be released.

    Attributes:
        conversation_id: its conversation.
        turn_id: its id.
        sequence: its position in the conversation.
        closed_by: the rule that closed it.
        message_ids: its messages.
    """

    conversation_id: str
    turn_id: uuid.UUID
    sequence: int
    closed_by: str
    message_ids: list[str]


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
    new = NewTurn(conversation_id, turn_id, sequence, closed_by, list(message_ids))
    await open_turns(session, [new], at)


async def open_turns(session: AsyncSession, new: Sequence[NewTurn], at: datetime) -> None:
    """Record released turns, assign their messages, and mark each in flight (the caller
    holds the conversations' row locks)."""
    if not new:
        return
    await session.execute(
        turns.insert().values(
            [
                {
                    "turn_id": t.turn_id,
                    "conversation_id": t.conversation_id,
                    "sequence": t.sequence,
                    "closed_by": t.closed_by,
                    "message_count": len(t.message_ids),
                    "released_at": at,
                }
                for t in new
            ]
        )
    )
    assignment = values(
        column("message_id", String), column("turn_id", PG_UUID(as_uuid=True)), name="assignment"
    ).data([(m, t.turn_id) for t in new for m in t.message_ids])
    assigned = await session.execute(
        update(messages)
        .where(messages.c.message_id == assignment.c.message_id, messages.c.turn_id.is_(None))
        .values(turn_id=assignment.c.turn_id)
    )
    expected = sum(len(t.message_ids) for t in new)
    if assigned.rowcount != expected:  # type: ignore[attr-defined]
        raise RuntimeError("messages were assigned to turns concurrently")
    flights = values(
        column("conversation_id", String),
        column("sequence", Integer),
        column("turn_id", PG_UUID(as_uuid=True)),
        name="flights",
    ).data([(t.conversation_id, t.sequence, t.turn_id) for t in new])
    await session.execute(
        update(conversations)
        .where(conversations.c.conversation_id == flights.c.conversation_id)
        .values(
            last_sequence=flights.c.sequence,
            in_flight_turn_id=flights.c.turn_id,
            in_flight_since=at,
        )
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
    return (await complete_turns(session, [(turn_id, outcome)], at)).get(turn_id)


async def complete_turns(
    session: AsyncSession, reports: Sequence[tuple[uuid.UUID, str]], at: datetime
) -> dict[uuid.UUID, Completion]:
    """`complete_turn` for many reports in one transaction; turns never released are left out.

    The first report of a turn wins (a later one, or a repeat in `reports`, is not recorded).
    """
    if not reports:
        return {}
    turn_ids = list({turn_id for turn_id, _ in reports})
    owners = {
        row.turn_id: str(row.conversation_id)
        for row in await session.execute(
            select(turns.c.turn_id, turns.c.conversation_id).where(turns.c.turn_id.in_(turn_ids))
        )
    }
    if not owners:
        return {}
    # Lock in key order, as every writer of several conversations does.
    await session.execute(
        select(conversations.c.conversation_id)
        .where(conversations.c.conversation_id.in_(sorted(set(owners.values()))))
        .order_by(conversations.c.conversation_id)
        .with_for_update()
    )
    outcomes: dict[uuid.UUID, str] = {}
    for turn_id, outcome in reports:
        if turn_id in owners:
            outcomes.setdefault(turn_id, outcome)
    first: set[uuid.UUID] = set()
    for outcome in sorted(set(outcomes.values())):
        recorded = await session.execute(
            update(turns)
            .where(
                turns.c.turn_id.in_([t for t, o in outcomes.items() if o == outcome]),
                turns.c.completed_at.is_(None),
            )
            .values(completed_at=at, outcome=outcome)
            .returning(turns.c.turn_id)
        )
        first.update(recorded.scalars())
    # A turn id is in flight in its own conversation only.
    await session.execute(
        update(conversations)
        .where(
            conversations.c.conversation_id.in_(sorted(set(owners.values()))),
            conversations.c.in_flight_turn_id.in_(list(owners)),
        )
        .values(in_flight_turn_id=None, in_flight_since=None)
    )
    return {turn_id: Completion(owners[turn_id], turn_id in first) for turn_id in owners}
