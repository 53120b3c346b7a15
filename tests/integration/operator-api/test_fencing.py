"""The Redis fencing copy never goes back in time and heals from PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from baton_operator_api import feed
from baton_operator_api.context import ServiceContext
from baton_operator_api.control import ControlState
from baton_operator_api.fencing import resync
from baton_shared.db.tables import inbox
from baton_shared.events import (
    ControlChange,
    ConversationAwaitingHuman,
    InterventionRequested,
    Mode,
    parse_event,
)
from baton_shared.events.ids import conversation_id_for
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, NewOperator, auth, customer_writes, new_wa_id

pytestmark = pytest.mark.integration


async def _pending(ctx: ServiceContext, conversation_id: str) -> ControlState | None:
    """The fence's state once it shows `pending_human`, else None."""
    state = await ctx.fence.read(conversation_id)
    return state if state and state.mode == Mode.PENDING_HUMAN else None


async def test_an_older_epoch_never_replaces_a_newer_one(ctx: ServiceContext) -> None:
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, new_wa_id())
    assert await ctx.fence.write(conversation_id, ControlState(Mode.OPERATOR, 5, "zoe"))
    assert not await ctx.fence.write(conversation_id, ControlState(Mode.AI, 4))  # late writer
    assert not await ctx.fence.write(conversation_id, ControlState(Mode.AI, 5))
    assert await ctx.fence.read(conversation_id) == ControlState(Mode.OPERATOR, 5, "zoe")


async def test_resync_restores_a_lost_fence_from_postgresql(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    token = await new_operator("yann")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    await bus.redis.delete(ctx.fence.key(conversation_id))  # Redis lost it (flush, failover)

    await resync(ctx.db, ctx.fence)

    assert await ctx.fence.read(conversation_id) == ControlState(Mode.OPERATOR, 1, "yann")


async def test_intervention_request_moves_to_pending_human_with_a_new_epoch(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    change = ControlChange(
        phone_number_id=PHONE_NUMBER_ID,
        wa_id=wa_id,
        mode=Mode.PENDING_HUMAN,
        epoch=1,  # the agent asks under the epoch after its turn's (0)
        reason="customer asked for a human",
    )
    event = InterventionRequested.create(change, producer="agent", conversation_id=conversation_id)
    await bus.publish(event)
    await bus.publish(event, stream=names.CONV_CONTROL)  # a duplicate append changes nothing

    assert await wait_until(lambda: _pending(ctx, conversation_id)) == ControlState(
        Mode.PENDING_HUMAN, 1
    )
    queue = await client.get(
        "/api/v1/conversations", params={"needs_attention": "true"}, headers=auth(token)
    )
    item = next(i for i in queue.json()["items"] if i["id"] == conversation_id)
    assert (item["mode"], item["needs_attention"], item["epoch"]) == ("pending_human", True, 1)
    assert item["waiting_since"] is not None
    # Accepted: said on conv.control, once, and the live feed shows that, not the request.
    [accepted] = await wait_until(lambda: _awaiting(bus, conversation_id))
    assert (accepted.payload.mode, accepted.payload.epoch) == (Mode.PENDING_HUMAN, 1)
    assert accepted.causation_id == event.event_id
    assert feed.describe(event) is None
    kind, body = feed.describe(accepted) or ("", {})
    assert (kind, body["mode"], body["reason"]) == ("mode_change", "pending_human", change.reason)


async def test_a_late_intervention_request_does_not_silence_the_ai_after_handback(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    # The AI asked for a person under epoch 1 (its turn ran at 0); before that event was
    # handled an operator took over (1) and handed back (2). Applied late, it would put the
    # conversation in pending_human at 3 and fence the AI right after the handback.
    token = await new_operator()
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    handback = await client.post("/api/v1/handback", json={"wa_id": wa_id}, headers=auth(token))
    assert handback.json()["epoch"] == 2
    late = ControlChange(
        phone_number_id=PHONE_NUMBER_ID,
        wa_id=wa_id,
        mode=Mode.PENDING_HUMAN,
        epoch=1,
        reason="customer asked for a human",
    )
    event = InterventionRequested.create(late, producer="agent", conversation_id=conversation_id)
    await bus.publish(event)
    await wait_until(lambda: _handled(ctx, event), what="late request handled")

    assert await ctx.fence.read(conversation_id) == ControlState(Mode.AI, 2)
    conversation = await client.get(f"/api/v1/conversations/{conversation_id}", headers=auth(token))
    assert (conversation.json()["mode"], conversation.json()["epoch"]) == ("ai", 2)
    assert await _awaiting(bus, conversation_id) == []  # nobody is told it waits: it does not


async def _awaiting(bus: Bus, conversation_id: str) -> list[ConversationAwaitingHuman]:
    """The conversation's `conversation.awaiting_human` events on conv.control."""
    events = [
        parse_event(f["event_type"], int(f["schema_version"]), f["body"])
        for _, f in await bus.redis.xrange(bus.key(names.CONV_CONTROL))
        if f.get("conversation_id") == conversation_id
    ]
    return [e for e in events if isinstance(e, ConversationAwaitingHuman)]


async def _handled(ctx: ServiceContext, event: InterventionRequested) -> bool:
    async with ctx.db.session() as session:
        found = await session.scalar(
            select(inbox.c.event_id).where(inbox.c.event_id == event.event_id)
        )
        return found is not None


async def test_a_takeover_moves_past_a_fence_that_is_ahead_of_postgresql(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    # PostgreSQL restored from a backup taken before two control changes that Redis kept: its
    # epoch (0) is behind the fence's (2). A takeover under epoch 1 would be refused by the
    # compare-and-set and answer 200 while the sender still saw the AI holding it.
    token = await new_operator("una")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    assert await ctx.fence.write(conversation_id, ControlState(Mode.AI, 2))

    response = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))

    assert response.status_code == 200
    assert response.json()["epoch"] == 3
    assert await ctx.fence.read(conversation_id) == ControlState(Mode.OPERATOR, 3, "una")
    await resync(ctx.db, ctx.fence)  # PostgreSQL agrees: resync changes nothing
    assert await ctx.fence.read(conversation_id) == ControlState(Mode.OPERATOR, 3, "una")


async def test_an_intervention_request_moves_past_a_fence_that_is_ahead(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    assert await ctx.fence.write(conversation_id, ControlState(Mode.AI, 4))
    change = ControlChange(
        phone_number_id=PHONE_NUMBER_ID, wa_id=wa_id, mode=Mode.PENDING_HUMAN, epoch=1
    )
    await bus.publish(
        InterventionRequested.create(change, producer="agent", conversation_id=conversation_id)
    )

    assert await wait_until(lambda: _pending(ctx, conversation_id)) == ControlState(
        Mode.PENDING_HUMAN, 5
    )
