"""`wa.outbound.results` MessageSent: keep what human operators said for the thread."""

from __future__ import annotations

from baton_agent.context import AgentContext
from baton_agent.db import repo
from baton_agent.transcript import operator_key, operator_text
from baton_shared.events import Author, MessageSent, conversation_id_for


async def handle_message_sent(ctx: AgentContext, event: MessageSent) -> None:
    """Keep an operator's sent message until the conversation's next turn carries it into the
    thread (`Threads` in `runner`). Idempotent by its key: a repeat changes nothing."""
    outcome = event.payload
    if outcome.author is not Author.OPERATOR:
        return
    conversation_id = event.conversation_id or conversation_id_for(
        outcome.phone_number_id, outcome.to
    )
    async with ctx.session() as session:
        await repo.add_operator_message(
            session, conversation_id, operator_key(outcome), operator_text(outcome)
        )
