"""`conversation.intervention_requested`: the AI asked for a human; the conversation waits
in `pending_human` under a new epoch, the fencing copy says so, and
`conversation.awaiting_human` tells everyone else (the request itself may be ignored: an
operator already holds the conversation, or a later change overtook it)."""

from __future__ import annotations

from baton_operator_api import control
from baton_operator_api.actions import save_change
from baton_operator_api.context import ServiceContext
from baton_operator_api.db import repo
from baton_shared.db import claim_inbox
from baton_shared.events import (
    ConversationAwaitingHuman,
    InterventionRequested,
    conversation_id_for,
)

CONSUMER = "operator-api.control"


async def handle(ctx: ServiceContext, event: InterventionRequested) -> None:
    """Move the conversation to `pending_human` unless an operator already holds it."""
    change = event.payload
    conversation_id = event.conversation_id or conversation_id_for(
        change.phone_number_id, change.wa_id
    )
    async with ctx.db.session() as session:
        if await claim_inbox(session, CONSUMER, event.event_id):
            await repo.ensure(session, conversation_id, change.phone_number_id, change.wa_id)
            row = await repo.lock(session, conversation_id)
            assert row is not None
            new = control.decide_intervention(repo.state_of(row), change.epoch)
            if new is not None:
                new = await ctx.fence.past(conversation_id, new)
                await save_change(
                    session,
                    conversation_id,
                    row,
                    new,
                    ConversationAwaitingHuman,
                    reason=change.reason,
                    waiting="start",
                    cause=event,
                )
        row = await repo.get(session, conversation_id)
    # Also on a redelivery: the first delivery may have committed and then lost Redis.
    if row is not None and row.epoch > 0:
        await ctx.fence.write(conversation_id, repo.state_of(row))
