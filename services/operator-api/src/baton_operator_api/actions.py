"""Operator actions: takeover, handback, resolve. Each changes the control state and stages
its `conv.control` event in one transaction, then writes the fencing copy in Redis before
the caller answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from baton_operator_api import control, metrics
from baton_operator_api.api.schemas import CustomerRef
from baton_operator_api.context import PRODUCER, ServiceContext
from baton_operator_api.control import ControlState
from baton_operator_api.db import operators, repo
from baton_operator_api.db.operators import Operator
from baton_operator_api.errors import NotFoundError, UnprocessableError
from baton_shared.db import add_to_outbox
from baton_shared.events import (
    ControlChange,
    ConversationHandedBack,
    ConversationResolved,
    ConversationTakenOver,
    Event,
    Mode,
    conversation_id_for,
)

Decide = Callable[[ControlState], ControlState | None]


async def locate(session: AsyncSession, ref: CustomerRef, *, create: bool = False) -> str:
    """The conversation id a request names; with `create`, a new one on a given number."""
    rows = await repo.find_by_customer(session, ref.customer, ref.phone_number_id)
    if len(rows) == 1:
        return str(rows[0].id)
    if len(rows) > 1:
        numbers = ", ".join(r.phone_number_id for r in rows)
        raise UnprocessableError(
            f"customer {ref.customer} has conversations on several numbers ({numbers})",
            code="phone_number_id_required",
            hint="add phone_number_id to the request",
        )
    if create and ref.phone_number_id:
        conversation_id = conversation_id_for(ref.phone_number_id, ref.customer)
        await repo.ensure(session, conversation_id, ref.phone_number_id, ref.customer)
        return conversation_id
    raise NotFoundError(f"no conversation with customer {ref.customer}")


async def save_change(
    session: AsyncSession,
    conversation_id: str,
    row: Row[Any],
    new: ControlState,
    event_cls: type[Event],
    *,
    reason: str | None,
    waiting: str = "keep",
    cause: Event | None = None,
) -> None:
    """Save the locked conversation's (`row`) new control state and stage the `conv.control`
    event that says so, in the caller's transaction: every control change, by an operator
    or by a consumer, goes through here."""
    await repo.save_control(session, conversation_id, new, reason=reason, waiting=waiting)
    payload = ControlChange(
        phone_number_id=row.phone_number_id,
        wa_id=row.wa_id,
        mode=new.mode,
        epoch=new.epoch,
        operator=new.operator,
        reason=reason,
    )
    await add_to_outbox(
        session,
        event_cls.create(payload, producer=PRODUCER, cause=cause, conversation_id=conversation_id),
    )


async def change(
    ctx: ServiceContext,
    actor: Operator,
    conversation_id: str | None,
    ref: CustomerRef | None,
    *,
    action: str,
    decide: Decide,
    event_cls: type[Event],
    reason: str | None,
    waiting: str = "keep",
    create: bool = False,
    metric: str | None = None,
) -> Row[Any]:
    """Apply one control action under the conversation's row lock; returns the new row.

    `metric` labels `baton_operator_actions_total` (default: `action`).
    """
    waited_since: datetime | None = None
    async with ctx.db.session() as session:
        if conversation_id is None:
            assert ref is not None
            conversation_id = await locate(session, ref, create=create)
        row = await repo.lock(session, conversation_id)
        if row is None:
            raise NotFoundError(f"no conversation {conversation_id}")
        old = repo.state_of(row)
        new = decide(old)
        if new is not None:
            new = await ctx.fence.past(conversation_id, new)
            if old.mode == Mode.PENDING_HUMAN and new.mode == Mode.OPERATOR:
                waited_since = row.waiting_since
            await save_change(
                session, conversation_id, row, new, event_cls, reason=reason, waiting=waiting
            )
        await operators.audit(
            session, actor.name, action, conversation_id, changed=new is not None, reason=reason
        )
        row = await repo.get(session, conversation_id)
    assert row is not None
    # After the commit and before the answer: a 200 means the sender's fence already sees it.
    # The write is compare-and-set on the epoch, so racing writers cannot regress it.
    if row.epoch > 0:
        await ctx.fence.write(conversation_id, repo.state_of(row))
    metrics.ACTIONS.labels(metric or action).inc()
    if waited_since is not None:
        wait = (datetime.now(UTC) - waited_since).total_seconds()
        metrics.HANDOFF_WAIT.observe(max(wait, 0.0))
    return row


async def takeover(
    ctx: ServiceContext, actor: Operator, ref: CustomerRef, *, reason: str | None, force: bool
) -> Row[Any]:
    """The calling operator takes the conversation over."""
    return await change(
        ctx,
        actor,
        None,
        ref,
        action="takeover",
        decide=lambda s: control.decide_takeover(s, actor.name, actor.role, force=force),
        event_cls=ConversationTakenOver,
        reason=reason,
        create=True,
        metric="force_takeover" if force else None,
    )


async def handback(
    ctx: ServiceContext, actor: Operator, ref: CustomerRef, *, note: str | None
) -> Row[Any]:
    """Hand the conversation back to the AI."""
    return await change(
        ctx,
        actor,
        None,
        ref,
        action="handback",
        decide=lambda s: control.decide_handback(s, actor.name, actor.role),
        event_cls=ConversationHandedBack,
        reason=note,
    )


async def resolve(
    ctx: ServiceContext, actor: Operator, conversation_id: str, *, note: str | None
) -> Row[Any]:
    """Mark the conversation resolved (the next customer message reopens it to the AI)."""
    return await change(
        ctx,
        actor,
        conversation_id,
        None,
        action="resolve",
        decide=lambda s: control.decide_resolve(s, actor.name, actor.role),
        event_cls=ConversationResolved,
        reason=note,
        waiting="clear",
    )
