"""`wa.outbound.results`: the delivery status of every message in the transcript."""

from __future__ import annotations

from baton_operator_api.context import ServiceContext
from baton_operator_api.db import repo, transcript
from baton_operator_api.failures import explain, failed
from baton_shared.db import claim_inbox
from baton_shared.events import (
    NOT_MESSAGES,
    Author,
    DeliveryStatusChanged,
    Event,
    MessageFailed,
    MessageSent,
    MessageSuppressed,
    Mode,
    OutboundOutcome,
    conversation_id_for,
)

CONSUMER = "operator-api.results"


def status_of(event: Event, outcome: OutboundOutcome) -> str:
    """The transcript status an outbound result leads to."""
    if isinstance(event, MessageFailed):
        return "failed"
    if isinstance(event, MessageSuppressed):
        return "suppressed"
    if isinstance(event, DeliveryStatusChanged):
        return outcome.status.value if outcome.status else "unknown"
    return "sent"


async def handle(
    ctx: ServiceContext,
    event: MessageSent | MessageFailed | MessageSuppressed | DeliveryStatusChanged,
) -> None:
    """Record the result once; a sent answer stops the customer's waiting clock. Marking the
    customer's message read and the typing indicator are not messages: nothing to record."""
    out = event.payload
    if out.kind in NOT_MESSAGES:
        return
    conversation_id = event.conversation_id or conversation_id_for(out.phone_number_id, out.to)
    status = status_of(event, out)
    async with ctx.db.session() as session:
        if not await claim_inbox(session, CONSUMER, event.event_id):
            return
        await repo.ensure(session, conversation_id, out.phone_number_id, out.to)
        row = await repo.get(session, conversation_id)
        assert row is not None
        latency_ms = None
        if isinstance(event, MessageSent) and out.author == Author.AI and row.last_inbound_at:
            latency_ms = max(
                0, int((event.occurred_at - row.last_inbound_at).total_seconds() * 1000)
            )
        await transcript.upsert_outbound(
            session,
            conversation_id,
            command_id=out.command_id,
            author=out.author.value,
            kind=out.kind.value,
            text=out.text,
            wa_message_id=out.wa_message_id,
            status=status,
            reason=out.reason,
            error_code=out.error.code if out.error else None,
            error=explain(out.reason, out.error, out.details) if failed(event, out) else None,
            latency_ms=latency_ms,
            at=event.occurred_at,
        )
        if isinstance(event, MessageSent):
            answered = out.author == Author.OPERATOR or (
                out.author == Author.AI and row.mode == Mode.AI.value
            )
            await repo.note_outbound(
                session, conversation_id, at=event.occurred_at, answered=answered
            )
