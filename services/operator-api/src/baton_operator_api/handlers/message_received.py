"""`inbound.message_received`: the transcript, the queue, the 24-hour window, reopening
resolved conversations (`conversation.reopened`, so dashboards and integrators see it), and
recording customer media for download."""

from __future__ import annotations

from baton_operator_api import control
from baton_operator_api.actions import save_change
from baton_operator_api.context import ServiceContext
from baton_operator_api.db import media, repo, transcript
from baton_shared.db import claim_inbox
from baton_shared.events import (
    ConversationReopened,
    InboundMessage,
    MessageReceived,
    MessageType,
    conversation_id_for,
)

CONSUMER = "operator-api.inbound"
MEDIA_TYPES = frozenset(
    {
        MessageType.IMAGE,
        MessageType.AUDIO,
        MessageType.VIDEO,
        MessageType.DOCUMENT,
        MessageType.STICKER,
    }
)


def media_id_of(msg: InboundMessage) -> str | None:
    """The media id of a customer's image, audio (voice notes too), video, document or sticker."""
    return msg.media.id if msg.media is not None and msg.type in MEDIA_TYPES else None


async def handle(ctx: ServiceContext, event: MessageReceived) -> None:
    """Record a customer message once; a resolved conversation goes back to the AI."""
    msg = event.payload
    conversation_id = event.conversation_id or conversation_id_for(
        msg.phone_number_id, msg.customer_id
    )
    media_id = media_id_of(msg)
    async with ctx.db.session() as session:
        # Once per event and once per WhatsApp id (invariant 2): the same message under a new
        # event id (a replay upstream) must not restart the waiting clock, reopen a resolved
        # conversation or fetch its media again.
        if not await claim_inbox(session, CONSUMER, event.event_id) or not (
            await transcript.add_inbound(
                session,
                conversation_id,
                wa_message_id=msg.message_id,
                kind=msg.type.value,
                text=msg.text,
                at=msg.timestamp,
                media_id=media_id,
            )
        ):
            row = await repo.get(session, conversation_id)
            media_id = None
        else:
            await repo.note_inbound(
                session,
                conversation_id,
                phone_number_id=msg.phone_number_id,
                wa_id=msg.customer_id,
                customer_name=msg.customer_name,
                at=msg.timestamp,
            )
            if media_id is not None and msg.media is not None:
                await media.add_pending(
                    session,
                    media_id=media_id,
                    conversation_id=conversation_id,
                    wa_message_id=msg.message_id,
                    kind=msg.type.value,
                    voice=msg.media.voice,
                    mime_type=msg.media.mime_type,
                    filename=msg.media.filename,
                    webhook_sha256=msg.media.sha256,
                )
            row = await repo.lock(session, conversation_id)
            assert row is not None
            reopened = control.decide_reopen(repo.state_of(row))
            if reopened is not None:
                await save_change(
                    session,
                    conversation_id,
                    row,
                    reopened,
                    ConversationReopened,
                    reason="reopened: the customer wrote again",
                    cause=event,
                )
                row = await repo.get(session, conversation_id)
    if media_id is not None:
        ctx.media_wake.set()
    if row is not None and row.epoch > 0:
        await ctx.fence.write(conversation_id, repo.state_of(row))
