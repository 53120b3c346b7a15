"""`wa.outbound.results` MessageSent: record what human operators said into the thread."""

from __future__ import annotations

from baton_agent.context import AgentContext
from baton_shared.events import Author, MessageSent, conversation_id_for


async def handle_message_sent(ctx: AgentContext, event: MessageSent) -> None:
    """Add an operator's sent message to the conversation's thread (idempotent by command id).

    No inbox row: the thread de-duplicates by message id, so a repeat changes nothing.
    """
    outcome = event.payload
    if outcome.author is not Author.OPERATOR:
        return
    conversation_id = event.conversation_id or conversation_id_for(
        outcome.phone_number_id, outcome.to
    )
    await ctx.threads.record_operator_message(conversation_id, outcome)
