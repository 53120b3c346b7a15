"""`conv.control`: remember who answers each conversation, and its control epoch."""

from __future__ import annotations

from baton_agent.context import AgentContext
from baton_agent.db import repo
from baton_shared.db import claim_inbox
from baton_shared.events import ControlChange, Event, InterventionRequested, conversation_id_for

CONSUMER = "agent.control"


async def handle_control_changed(ctx: AgentContext, event: Event) -> None:
    """Store the new mode and epoch; older epochs (reordered or repeated) change nothing. The
    operator-api's changes also replace another state under the same epoch (`repo.apply_control`);
    the agent's own hand-off request does not."""
    change = event.payload
    if not isinstance(change, ControlChange):
        return
    conversation_id = event.conversation_id or conversation_id_for(
        change.phone_number_id, change.wa_id
    )
    async with ctx.db.session() as session:
        if not await claim_inbox(session, CONSUMER, event.event_id):
            return
        await repo.apply_control(
            session,
            conversation_id,
            phone_number_id=change.phone_number_id,
            wa_id=change.wa_id,
            mode=change.mode,
            epoch=change.epoch,
            # Every control event but the agent's own hand-off request is the operator-api's.
            decided=not isinstance(event, InterventionRequested),
        )
