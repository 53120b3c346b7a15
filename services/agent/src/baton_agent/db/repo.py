"""Reads and writes of the agent's tables; callers own the transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import JSON, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from baton_agent.db.models import checkpoints, conversations, operator_messages, turns
from baton_shared.events import Mode


@dataclass(frozen=True, slots=True)
class Control:
    """Who answers a conversation.

    Attributes:
        mode: ai, operator or pending_human (`resolved` reads as ai: the next message reopens).
        epoch: the control epoch; AI messages carry it so the sender can fence them.
    """

    mode: Mode
    epoch: int


AI_CONTROL = Control(Mode.AI, 0)


def _control(mode: str | None, epoch: int | None) -> Control:
    if mode is None or epoch is None:
        return AI_CONTROL
    known = Mode(mode) if mode in Mode._value2member_map_ else Mode.UNKNOWN
    return Control(Mode.AI if known is Mode.RESOLVED else known, int(epoch))


async def get_control(session: AsyncSession, conversation_id: str) -> Control:
    """The conversation's control state; a conversation never seen is in `ai` mode, epoch 0."""
    row = (
        await session.execute(
            select(conversations.c.mode, conversations.c.epoch).where(
                conversations.c.conversation_id == conversation_id
            )
        )
    ).first()
    return AI_CONTROL if row is None else _control(row.mode, row.epoch)


# The per-turn statements are built once, with bound parameters: building a statement and
# its compile-cache key per call cost more CPU than the round trip (~0.4 ms for this one).
# The checkpointed turn: `turn_id` is a string, which the Postgres saver keeps inline in the
# checkpoint row (messages go to the blobs table), so no blob is read.
_CHECKPOINTED_TURN = (
    select(checkpoints.c.checkpoint[("channel_values", "turn_id")].astext)
    .where(
        checkpoints.c.thread_id == bindparam("conversation_id"),
        checkpoints.c.checkpoint_ns == "",
    )
    .order_by(checkpoints.c.checkpoint_id.desc())
    .limit(1)
    .scalar_subquery()
)
# The control epoch the agent stored for the conversation.
_OWN_EPOCH = (
    select(conversations.c.epoch)
    .where(conversations.c.conversation_id == bindparam("conversation_id"))
    .scalar_subquery()
)
# AI answers of the conversation within the window under its current epoch (a takeover or
# handback starts a new count), counted no further than the limit (`cap`; 0 counts nothing).
_RECENT_ANSWERS = (
    select(func.count())
    .select_from(
        select(turns.c.turn_id)
        .where(
            turns.c.conversation_id == bindparam("conversation_id"),
            turns.c.completed_at > bindparam("since"),
            turns.c.outcome == "answered",
            turns.c.epoch == func.coalesce(_OWN_EPOCH, 0),
        )
        .limit(bindparam("cap"))
        .subquery()
    )
    .scalar_subquery()
)
# Operator messages waiting for this turn, as [key, text] pairs in the order they were sent.
_om = operator_messages.c
_WAITING_OPERATOR_MESSAGES = (
    select(
        func.json_agg(
            aggregate_order_by(func.json_build_array(_om.message_key, _om.text), _om.id),
            type_=JSON,
        )
    )
    .where(_om.conversation_id == bindparam("conversation_id"), _om.turn_id.is_(None))
    .scalar_subquery()
)
# The epoch the conversation's latest turn ran under (none before its first turn).
_LAST_TURN_EPOCH = (
    select(turns.c.epoch)
    .where(turns.c.conversation_id == bindparam("conversation_id"))
    .order_by(turns.c.completed_at.desc())
    .limit(1)
    .scalar_subquery()
)
_TURN_STATE = select(
    select(turns.c.turn_id).where(turns.c.turn_id == bindparam("turn_id")).exists(),
    select(conversations.c.mode)
    .where(conversations.c.conversation_id == bindparam("conversation_id"))
    .scalar_subquery(),
    _OWN_EPOCH,
    _CHECKPOINTED_TURN,
    _RECENT_ANSWERS,
    _WAITING_OPERATOR_MESSAGES,
    _LAST_TURN_EPOCH,
)


@dataclass(frozen=True, slots=True)
class TurnState:
    """What the agent knows of a turn before running it.

    Attributes:
        done: the turn is in the turn log (a repeat: nothing to do).
        control: the conversation's control, as the agent last stored it.
        checkpointed_turn_id: the turn of the thread's latest checkpoint, if any.
        recent_answers: AI answers in the conversation since `since` under the stored
            epoch, counted up to `cap`.
        operator_messages: (key, text) of what operators sent since the last turn, in order.
        last_turn_epoch: the epoch the conversation's latest turn ran under, if it had one.
    """

    done: bool
    control: Control
    checkpointed_turn_id: str | None
    recent_answers: int
    operator_messages: list[tuple[str, str]]
    last_turn_epoch: int | None = None

    def back_from_a_person(self, control: Control) -> bool:
        """Whether the conversation comes back to the AI from a person since its last turn
        (a takeover and handback, a resolve and reopen: any change of hands)."""
        return (
            control.mode is Mode.AI
            and self.last_turn_epoch is not None
            and control.epoch > self.last_turn_epoch
        )


async def turn_state(
    conn: AsyncConnection,
    turn_id: uuid.UUID,
    conversation_id: str,
    *,
    since: datetime,
    cap: int,
) -> TurnState:
    """The turn's state in one round trip, with the conversation's AI answers since `since`
    (up to `cap`).

    One statement, so it needs no transaction: `conn` may be in autocommit mode.
    """
    params = {"turn_id": turn_id, "conversation_id": conversation_id, "since": since, "cap": cap}
    row = (await conn.execute(_TURN_STATE, params)).one()
    waiting = [(str(key), str(text)) for key, text in row[5] or []]
    last_epoch = None if row[6] is None else int(row[6])
    return TurnState(
        bool(row[0]), _control(row[1], row[2]), row[3], int(row[4]), waiting, last_epoch
    )


async def add_operator_message(
    session: AsyncSession, conversation_id: str, message_key: str, text: str
) -> None:
    """Keep what an operator sent for the conversation's next turn (once per key)."""
    await session.execute(
        insert(operator_messages)
        .values(conversation_id=conversation_id, message_key=message_key, text=text)
        .on_conflict_do_nothing(index_elements=[operator_messages.c.message_key])
    )


async def carry_operator_messages(
    session: AsyncSession, turn_id: uuid.UUID, message_keys: list[str]
) -> None:
    """Mark these operator messages as in the thread, carried by `turn_id`."""
    if message_keys:
        await session.execute(
            update(operator_messages)
            .where(
                operator_messages.c.message_key.in_(message_keys),
                operator_messages.c.turn_id.is_(None),
            )
            .values(turn_id=turn_id)
        )


async def apply_control(
    session: AsyncSession,
    conversation_id: str,
    *,
    phone_number_id: str,
    wa_id: str,
    mode: Mode,
    epoch: int,
    decided: bool = False,
) -> bool:
    """Store a control change unless a newer (or equal) epoch is already known.

    `decided`: the change is the operator-api's (its event or its fencing hash), which also
    replaces what the agent stored under the same epoch: the agent's own hand-off, which the
    operator-api refused when an operator acted under that epoch first (see
    `fencing.newer`)."""
    values = {
        "phone_number_id": phone_number_id,
        "wa_id": wa_id,
        "mode": mode.value,
        "epoch": epoch,
    }
    insert_row = insert(conversations).values(conversation_id=conversation_id, **values)
    stored, given = conversations.c, insert_row.excluded
    replaces = stored.epoch < given.epoch
    if decided:
        replaces = replaces | ((stored.epoch == given.epoch) & (stored.mode != given.mode))
    stmt = insert_row.on_conflict_do_update(
        index_elements=[conversations.c.conversation_id],
        set_={**values, "updated_at": func.now()},
        where=replaces,
    ).returning(conversations.c.epoch)
    return (await session.execute(stmt)).first() is not None


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """A finished turn, for the turn log.

    Attributes:
        turn_id: the turn.
        conversation_id: its conversation.
        sequence: its position in the conversation.
        mode: the mode it was processed in.
        epoch: the control epoch it was processed under.
        outcome: answered, recorded, handed_off or failed.
        outputs: messages it sent.
        handoff_reason: why it handed off, if it did.
    """

    turn_id: uuid.UUID
    conversation_id: str
    sequence: int
    mode: str
    epoch: int
    outcome: str
    outputs: int
    handoff_reason: str | None


_TURN_COLUMNS = tuple(f.name for f in fields(TurnRecord))
_LOG_TURN = (
    insert(turns)
    .values({name: bindparam(name) for name in _TURN_COLUMNS})
    .on_conflict_do_nothing()
    .returning(turns.c.turn_id)
)


async def log_turn(session: AsyncSession, record: TurnRecord) -> bool:
    """Insert the turn into the log; False when it was already there (a repeat)."""
    params = {name: getattr(record, name) for name in _TURN_COLUMNS}
    return (await session.execute(_LOG_TURN, params)).first() is not None
