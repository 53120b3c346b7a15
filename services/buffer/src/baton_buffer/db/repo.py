"""Queries on the buffer's tables; every function runs inside the caller's transaction.

The hot statements take their rows as arrays (`unnest`, `= ANY`), so their SQL text is the
same whatever the batch size: SQLAlchemy compiles each once and asyncpg prepares each once
per connection (a multi-row VALUES list would be compiled and prepared anew per batch).
Tables are named without schema: the session's search path starts with `buffer`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Row, func, literal_column, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from baton_buffer.db.models import conversations, messages, turns
from baton_shared.events import MessageReceived

_INSERT_CONVERSATIONS = text(
    "INSERT INTO conversations (conversation_id, phone_number_id, customer_id) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:phones AS text[]), "
    "CAST(:customers AS text[])) ON CONFLICT DO NOTHING"
)

# WITH ORDINALITY ... ORDER BY: rows get their arrival sequence in the arrays' order.
_INSERT_MESSAGES = text(
    "INSERT INTO messages (message_id, conversation_id, type, wa_timestamp, "
    "arrived_at, event_id, correlation_id, traceparent, payload, stream_ms, stream_seq) "
    "SELECT m, c, t, w, CAST(:arrived_at AS timestamptz), e, k, tp, CAST(p AS jsonb), sm, ss "
    "FROM unnest(CAST(:message_ids AS text[]), CAST(:conversation_ids AS text[]), "
    "CAST(:types AS text[]), CAST(:wa_timestamps AS timestamptz[]), "
    "CAST(:event_ids AS uuid[]), CAST(:correlation_ids AS uuid[]), "
    "CAST(:traceparents AS text[]), CAST(:payloads AS text[]), CAST(:stream_ms AS bigint[]), "
    "CAST(:stream_seqs AS bigint[])) "
    "WITH ORDINALITY AS u(m, c, t, w, e, k, tp, p, sm, ss, n) ORDER BY n "
    "ON CONFLICT DO NOTHING RETURNING message_id"
)

# Read without locks, after the writer's commit: the last writer of a conversation sees every
# earlier commit (see `release.look`). One primary-key lookup per id, whatever the planner
# believes about the table (`OFFSET 0` keeps the lateral subquery from being flattened): on a
# table not analysed since it grew, it chose a full scan of `conversations` per call, and
# that was the buffer's most expensive statement.
_SCHEDULE_STATES = text(
    "SELECT c.conversation_id, c.in_flight_since, c.arrivals "
    "FROM unnest(CAST(:ids AS text[])) AS i(id) CROSS JOIN LATERAL ("
    "SELECT conversation_id, in_flight_since, ("
    "SELECT array_agg(m.arrived_at ORDER BY m.arrival_seq) FROM messages m "
    "WHERE m.conversation_id = i.id AND m.turn_id IS NULL) AS arrivals "
    "FROM conversations WHERE conversation_id = i.id OFFSET 0) AS c"
)

_LOCK_CONVERSATIONS = (
    "SELECT conversation_id, phone_number_id, customer_id, last_sequence, in_flight_turn_id, "
    "in_flight_since FROM conversations "
    "WHERE conversation_id = ANY(CAST(:ids AS text[])) ORDER BY conversation_id FOR UPDATE"
)
_LOCK_WAITING = text(_LOCK_CONVERSATIONS)
_LOCK_FREE = text(_LOCK_CONVERSATIONS + " SKIP LOCKED")

# `payload` as JSON text: pydantic parses it (`model_validate_json`) faster than a dict. A
# turn's messages in WhatsApp's order, then (within its one-second resolution) their entries'
# order on `wa.inbound`, then the order they were recorded in.
_PENDING = text(
    "SELECT message_id, conversation_id, arrival_seq, arrived_at, event_id, correlation_id, "
    "traceparent, CAST(payload AS text) AS payload FROM messages "
    "WHERE conversation_id = ANY(CAST(:ids AS text[])) AND turn_id IS NULL "
    "ORDER BY conversation_id, wa_timestamp, stream_ms, stream_seq, arrival_seq"
)

_INSERT_TURNS = text(
    "INSERT INTO turns (turn_id, conversation_id, sequence, closed_by, "
    "message_count, released_at) "
    "SELECT t, c, s, b, n, CAST(:at AS timestamptz) FROM unnest(CAST(:turn_ids AS uuid[]), "
    "CAST(:conversation_ids AS text[]), CAST(:sequences AS int[]), "
    "CAST(:closed_by AS text[]), CAST(:counts AS int[])) AS u(t, c, s, b, n)"
)

_ASSIGN_MESSAGES = text(
    "UPDATE messages m SET turn_id = a.turn_id "
    "FROM unnest(CAST(:message_ids AS text[]), CAST(:turn_ids AS uuid[])) "
    "AS a(message_id, turn_id) WHERE m.message_id = a.message_id AND m.turn_id IS NULL"
)

_MARK_IN_FLIGHT = text(
    "UPDATE conversations c SET last_sequence = f.sequence, "
    "in_flight_turn_id = f.turn_id, in_flight_since = CAST(:at AS timestamptz) "
    "FROM unnest(CAST(:conversation_ids AS text[]), CAST(:sequences AS int[]), "
    "CAST(:turn_ids AS uuid[])) AS f(conversation_id, sequence, turn_id) "
    "WHERE c.conversation_id = f.conversation_id"
)

_TURN_OWNERS = text(
    "SELECT turn_id, conversation_id FROM turns WHERE turn_id = ANY(CAST(:turn_ids AS uuid[]))"
)

_LOCK_IDS = text(
    "SELECT conversation_id FROM conversations "
    "WHERE conversation_id = ANY(CAST(:ids AS text[])) ORDER BY conversation_id FOR UPDATE"
)

_COMPLETE_TURNS = text(
    "UPDATE turns t SET completed_at = CAST(:at AS timestamptz), outcome = r.outcome "
    "FROM unnest(CAST(:turn_ids AS uuid[]), CAST(:outcomes AS text[])) AS r(turn_id, outcome) "
    "WHERE t.turn_id = r.turn_id AND t.completed_at IS NULL RETURNING t.turn_id"
)

_END_FLIGHTS = text(
    "UPDATE conversations SET in_flight_turn_id = NULL, in_flight_since = NULL "
    "WHERE conversation_id = ANY(CAST(:ids AS text[])) "
    "AND in_flight_turn_id = ANY(CAST(:turn_ids AS uuid[]))"
)

# Conversations with an open burst or a turn in flight; both sides read a partial index,
# so the cost follows the number of active conversations, not of all conversations.
_ACTIVE = text(
    "SELECT count(*) FROM ("
    "SELECT conversation_id FROM conversations WHERE in_flight_turn_id IS NOT NULL "
    "UNION SELECT conversation_id FROM messages WHERE turn_id IS NULL) AS active"
)


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the timers of one conversation depend on.

    Attributes:
        in_flight_since: when the turn in flight was released (epoch seconds), if any.
        arrivals: arrival times of the pending messages (epoch seconds), in arrival order.
    """

    in_flight_since: float | None
    arrivals: list[float]


class Inbound(NamedTuple):
    """A customer message to record: the event, its conversation, and where its entry lies in
    `wa.inbound` ((ms, seq) of the entry id: within one WhatsApp second, the order it
    arrived in, whichever replica records it first)."""

    event: MessageReceived
    conversation_id: str
    position: tuple[int, int] = (0, 0)


async def record_messages(
    session: AsyncSession,
    items: Sequence[Inbound],
    arrived_at: datetime,
) -> set[str]:
    """Record inbound messages once each, in the given order (their arrival order); returns
    the WhatsApp ids recorded now (not recorded before)."""
    if not items:
        return set()
    convs: dict[str, tuple[str, str]] = {}
    for event, conversation_id, _ in items:
        convs.setdefault(
            conversation_id, (event.payload.phone_number_id, event.payload.customer_id)
        )
    ids = sorted(convs)  # in key order, so replicas inserting the same ones cannot deadlock
    await session.execute(
        _INSERT_CONVERSATIONS,
        {
            "ids": ids,
            "phones": [convs[c][0] for c in ids],
            "customers": [convs[c][1] for c in ids],
        },
    )
    # One statement: rows get their arrival sequence in list order.
    inserted = await session.execute(
        _INSERT_MESSAGES,
        {
            "message_ids": [i.event.payload.message_id for i in items],
            "conversation_ids": [i.conversation_id for i in items],
            "types": [i.event.payload.type.value for i in items],
            "wa_timestamps": [i.event.payload.timestamp for i in items],
            "arrived_at": arrived_at,
            "event_ids": [i.event.event_id for i in items],
            "correlation_ids": [i.event.correlation_id for i in items],
            "traceparents": [i.event.traceparent for i in items],
            "payloads": [i.event.payload.model_dump_json() for i in items],
            "stream_ms": [i.position[0] for i in items],
            "stream_seqs": [i.position[1] for i in items],
        },
    )
    return set(inserted.scalars())


async def schedule_states(
    session: AsyncSession, conversation_ids: Sequence[str]
) -> dict[str, ScheduleState]:
    """The in-flight turn and pending arrivals of each of these conversations (known ones)."""
    if not conversation_ids:
        return {}
    rows = await session.execute(_SCHEDULE_STATES, {"ids": sorted(set(conversation_ids))})
    return {row.conversation_id: _state(row) for row in rows}


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
    return {row.conversation_id: _state(row) for row in rows}


def _state(row: Any) -> ScheduleState:
    """The schedule state in a row of `conversation_id, in_flight_since, arrivals`."""
    return ScheduleState(
        row.in_flight_since.timestamp() if row.in_flight_since else None,
        [a.timestamp() for a in row.arrivals or []],
    )


async def active_conversations(session: AsyncSession) -> int:
    """How many conversations have an open burst or a turn in flight."""
    return int((await session.execute(_ACTIVE)).scalar_one())


async def lock_conversations(
    session: AsyncSession, conversation_ids: Sequence[str], *, skip_locked: bool = False
) -> dict[str, Row[Any]]:
    """The conversations' rows, locked (in key order) until the transaction ends; with
    `skip_locked`, only those no other transaction holds (the others are left out)."""
    if not conversation_ids:
        return {}
    statement = _LOCK_FREE if skip_locked else _LOCK_WAITING
    result = await session.execute(statement, {"ids": sorted(set(conversation_ids))})
    return {row.conversation_id: row for row in result}


async def pending_messages_of(
    session: AsyncSession, conversation_ids: Sequence[str]
) -> dict[str, list[Row[Any]]]:
    """The messages not yet in a turn of each of these conversations (those with any), by
    WhatsApp timestamp, then `wa.inbound` entry, then recording; `payload` is the message as
    JSON text.

    Run it after `lock_conversations`, as its own statement: a statement that waited for a
    row lock reads with the snapshot it started with, which would miss the messages the lock
    holder committed meanwhile (and a burst completed by them would not close)."""
    if not conversation_ids:
        return {}
    result = await session.execute(_PENDING, {"ids": list(conversation_ids)})
    out: dict[str, list[Row[Any]]] = {}
    for row in result:
        out.setdefault(row.conversation_id, []).append(row)
    return out


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
        _INSERT_TURNS,
        {
            "turn_ids": [t.turn_id for t in new],
            "conversation_ids": [t.conversation_id for t in new],
            "sequences": [t.sequence for t in new],
            "closed_by": [t.closed_by for t in new],
            "counts": [len(t.message_ids) for t in new],
            "at": at,
        },
    )
    assigned = await session.execute(
        _ASSIGN_MESSAGES,
        {
            "message_ids": [m for t in new for m in t.message_ids],
            "turn_ids": [t.turn_id for t in new for _ in t.message_ids],
        },
    )
    expected = sum(len(t.message_ids) for t in new)
    if assigned.rowcount != expected:  # type: ignore[attr-defined]
        raise RuntimeError("messages were assigned to turns concurrently")
    await session.execute(
        _MARK_IN_FLIGHT,
        {
            "conversation_ids": [t.conversation_id for t in new],
            "sequences": [t.sequence for t in new],
            "turn_ids": [t.turn_id for t in new],
            "at": at,
        },
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
    outcomes: dict[uuid.UUID, str] = {}
    for turn_id, outcome in reports:
        outcomes.setdefault(turn_id, outcome)  # the first report in `reports` wins
    owners = {
        row.turn_id: str(row.conversation_id)
        for row in await session.execute(_TURN_OWNERS, {"turn_ids": list(outcomes)})
    }
    if not owners:
        return {}
    ids = sorted(set(owners.values()))
    # Lock in key order, as every writer of several conversations does.
    await session.execute(_LOCK_IDS, {"ids": ids})
    known = [t for t in outcomes if t in owners]
    recorded = await session.execute(
        _COMPLETE_TURNS,
        {"turn_ids": known, "outcomes": [outcomes[t] for t in known], "at": at},
    )
    first = set(recorded.scalars())
    # A turn id is in flight in its own conversation only.
    await session.execute(_END_FLIGHTS, {"ids": ids, "turn_ids": list(owners)})
    return {turn_id: Completion(owners[turn_id], turn_id in first) for turn_id in owners}
