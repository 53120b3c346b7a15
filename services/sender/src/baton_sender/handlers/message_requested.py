"""`wa.outbound` MessageRequested: record the command; the dispatcher sends it.

Recording is the claim: once this transaction commits, the command id is known and a repeated
command (redelivery, or a producer retrying) inserts nothing and is never sent twice. Texts
longer than WhatsApp's 4,096 characters become several parts, sent in order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from baton_sender.context import SenderContext
from baton_sender.db import repo
from baton_sender.status import Status
from baton_sender.whatsapp.limits import split_text
from baton_shared.db import claim_inbox
from baton_shared.events import Event, MessageRequested, OutboundKind, conversation_id_for
from baton_shared.streams.bus import position
from baton_shared.streams.consumer import Delivery

log = logging.getLogger(__name__)
CONSUMER = "sender.outbound"


def _without_nul(value: Any) -> Any:
    """`value` with every NUL character taken out of its strings (keys too): PostgreSQL's
    text and jsonb refuse U+0000, so a command holding one failed its insert at every try and
    was dead-lettered without a result; WhatsApp shows nothing for it anyway."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def message_rows(event: MessageRequested, entry_id: str = "0-0") -> list[dict[str, Any]]:
    """The message rows of one command (several only for over-long texts), ordered among a
    customer's messages by `entry_id`, the `wa.outbound` entry that carried it."""
    stream_ms, stream_seq = position(entry_id)
    command = event.payload
    base = command.model_dump(mode="json")
    if "\\u0000" in (request := event.model_dump_json()):  # rare: clean only then
        base = _without_nul(base)
    body = base.get("text")
    texts: list[str | None] = [body]
    if command.kind is OutboundKind.TEXT and body:
        texts = list(split_text(body))
    conversation = event.conversation_id or conversation_id_for(command.phone_number_id, command.to)
    return [
        {
            "command_id": command.command_id,
            "part": index,
            "parts": len(texts),
            "phone_number_id": command.phone_number_id,
            "recipient": command.to,
            "conversation_id": conversation,
            "author": command.author.value,
            "kind": command.kind.value,
            "text": text,
            "control_epoch": command.control_epoch,
            "command": base | {"text": text},
            "request_event": request,
            "status": Status.QUEUED,
            "stream_ms": stream_ms,
            "stream_seq": stream_seq,
        }
        for index, text in enumerate(texts)
    ]


async def handle_batch(ctx: SenderContext, batch: Sequence[tuple[Event, Delivery]]) -> None:
    """Record a read batch of commands in one transaction, each ordered by its entry id;
    redelivered events and repeated command ids insert nothing. Wake the dispatcher."""
    requests = [(e, d.entry_id) for e, d in batch if isinstance(e, MessageRequested)]
    if requests:
        async with ctx.db.session() as session:
            fresh = await repo.claim_inbox_many(
                session, CONSUMER, [e.event_id for e, _ in requests]
            )
            rows = [
                row
                for e, entry in requests
                if e.event_id in fresh
                for row in message_rows(e, entry)
            ]
            added = await repo.add_messages(session, rows) if rows else 0
        if added < len(rows):
            log.info("%d command parts already recorded; not sending again", len(rows) - added)
    ctx.recorded.recorded(d.entry_id for _, d in batch)
    ctx.work.set()


async def handle(ctx: SenderContext, event: Event, delivery: Delivery) -> None:
    """Record a send command once; wake the dispatcher."""
    if not isinstance(event, MessageRequested):
        return
    async with ctx.db.session() as session:
        fresh = await claim_inbox(session, CONSUMER, event.event_id)
        rows = message_rows(event, delivery.entry_id) if fresh else []
        added = await repo.add_messages(session, rows)
    if added < len(rows):
        log.info("command %s already recorded; not sending again", event.payload.command_id)
    ctx.recorded.recorded([delivery.entry_id])
    ctx.work.set()
