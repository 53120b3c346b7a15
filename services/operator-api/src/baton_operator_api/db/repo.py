"""Conversation control state and the conversations read model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from baton_operator_api.control import ControlState
from baton_operator_api.db.models import conversations as c
from baton_shared.events import Mode

needs_attention: ColumnElement[bool] = or_(
    c.c.mode == Mode.PENDING_HUMAN.value,
    and_(c.c.mode == Mode.OPERATOR.value, c.c.waiting_since.is_not(None)),
).label("needs_attention")

CONVERSATION_COLUMNS = (*c.c, needs_attention)


def state_of(row: Row[Any]) -> ControlState:
    """The control state stored in a conversation row."""
    mode = row.mode if row.mode in Mode._value2member_map_ else Mode.UNKNOWN
    return ControlState(Mode(mode), int(row.epoch), row.operator)


async def ensure(
    session: AsyncSession, conversation_id: str, phone_number_id: str, wa_id: str
) -> None:
    """Create the conversation row if it does not exist yet (mode ai, epoch 0)."""
    await session.execute(
        insert(c)
        .values(id=conversation_id, phone_number_id=phone_number_id, wa_id=wa_id)
        .on_conflict_do_nothing(index_elements=[c.c.id])
    )


async def lock(session: AsyncSession, conversation_id: str) -> Row[Any] | None:
    """The conversation row, locked until the transaction ends (serialises control changes)."""
    query = select(*CONVERSATION_COLUMNS).where(c.c.id == conversation_id).with_for_update(of=c)
    return (await session.execute(query)).first()


async def get(session: AsyncSession, conversation_id: str) -> Row[Any] | None:
    """The conversation row, unlocked."""
    return (
        await session.execute(select(*CONVERSATION_COLUMNS).where(c.c.id == conversation_id))
    ).first()


async def find_by_customer(
    session: AsyncSession, wa_id: str, phone_number_id: str | None
) -> list[Any]:
    """Conversations of a customer, on one business number when it is given."""
    query = select(c.c.id, c.c.phone_number_id).where(c.c.wa_id == wa_id)
    if phone_number_id is not None:
        query = query.where(c.c.phone_number_id == phone_number_id)
    return list((await session.execute(query.order_by(c.c.id))).all())


async def save_control(
    session: AsyncSession,
    conversation_id: str,
    state: ControlState,
    *,
    reason: str | None,
    waiting: str = "keep",
) -> None:
    """Store a new control state; `waiting` is keep, clear or start (the waiting clock)."""
    values: dict[str, Any] = {
        "mode": state.mode.value,
        "epoch": state.epoch,
        "operator": state.operator,
        "mode_reason": reason,
        "updated_at": func.now(),
    }
    if waiting == "clear":
        values["waiting_since"] = None
    elif waiting == "start":
        values["waiting_since"] = func.coalesce(c.c.waiting_since, func.now())
    await session.execute(update(c).where(c.c.id == conversation_id).values(**values))


async def note_inbound(
    session: AsyncSession,
    conversation_id: str,
    *,
    phone_number_id: str,
    wa_id: str,
    customer_name: str | None,
    at: datetime,
) -> None:
    """Record that the customer wrote at `at`: last message, window start, waiting clock."""
    stmt = insert(c).values(
        id=conversation_id,
        phone_number_id=phone_number_id,
        wa_id=wa_id,
        customer_name=customer_name,
        last_message_at=at,
        last_inbound_at=at,
        waiting_since=at,
    )
    ex = stmt.excluded
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[c.c.id],
            set_={
                "customer_name": func.coalesce(ex.customer_name, c.c.customer_name),
                "last_message_at": func.greatest(c.c.last_message_at, ex.last_message_at),
                "last_inbound_at": func.greatest(c.c.last_inbound_at, ex.last_inbound_at),
                "waiting_since": func.coalesce(c.c.waiting_since, ex.waiting_since),
                "updated_at": func.now(),
            },
        )
    )


async def note_outbound(
    session: AsyncSession, conversation_id: str, *, at: datetime, answered: bool
) -> None:
    """Record a message to the customer; `answered` stops the waiting clock."""
    values: dict[str, Any] = {
        "last_message_at": func.greatest(c.c.last_message_at, at),
        "updated_at": func.now(),
    }
    if answered:
        values["waiting_since"] = None
    await session.execute(update(c).where(c.c.id == conversation_id).values(**values))
