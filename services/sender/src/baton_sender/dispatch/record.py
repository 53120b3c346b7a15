"""The dispatcher's state changes: each one commits alone, results with their outbox event."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import func

from baton_sender.coalesce import Coalescer
from baton_sender.context import SenderContext
from baton_sender.db import repo
from baton_sender.results import outcome, result_event
from baton_sender.status import OUTCOME_UNKNOWN, Status
from baton_shared.db import add_to_outbox
from baton_shared.events import (
    DeliveryStatus,
    Event,
    MessageFailed,
    MessageSent,
    MessageSuppressed,
    PlatformError,
)

log = logging.getLogger(__name__)

EARLIER_PART_FAILED = "earlier_part_failed"


async def release(ctx: SenderContext, seq: int, delay: float, **fields: Any) -> None:
    """Put a claimed message back in the queue, due after `delay` seconds (order is kept:
    it stays the head of its customer's queue)."""
    async with ctx.db.session() as session:
        await repo.requeue(
            session,
            seq,
            lease_until=None,
            not_before=func.now() + timedelta(seconds=delay),
            **fields,
        )


async def begin_call(ctx: SenderContext, seq: int, attempts: int, claim: datetime) -> bool:
    """Commit that the call is about to start: from here a crash leaves the outcome unknown.
    False when the claim (`claim`, its lease) is no longer this worker's: no call then.

    Concurrent sends commit together (one UPDATE per batch); this returns after the commit."""
    batches = ctx.batches.get("begin_call")
    if batches is None:
        batches = ctx.batches["begin_call"] = Coalescer(
            partial(_begin_calls, ctx), partial(_begin_one, ctx)
        )
    began: bool = await batches.submit((seq, attempts, claim))
    return began


async def _begin_calls(
    ctx: SenderContext, calls: Sequence[tuple[int, int, datetime]]
) -> list[bool]:
    lease = ctx.settings.wa_http_timeout + ctx.settings.claim_lease_seconds
    async with ctx.db.session() as session:
        began = await repo.begin_calls(session, calls, lease)
    return [seq in began for seq, _, _ in calls]


async def _begin_one(ctx: SenderContext, call: tuple[int, int, datetime]) -> bool:
    return (await _begin_calls(ctx, [call]))[0]


async def sent(ctx: SenderContext, seq: int, wa_message_id: str | None) -> None:
    """WhatsApp accepted the message: store its wamid and emit MessageSent.

    Concurrent answers are recorded together: one transaction, one UPDATE, one outbox insert."""
    batches = ctx.batches.get("sent")
    if batches is None:
        batches = ctx.batches["sent"] = Coalescer(
            partial(_record_sent, ctx), partial(_record_one_sent, ctx)
        )
    await batches.submit((seq, wa_message_id))


async def _record_one_sent(ctx: SenderContext, item: tuple[int, str | None]) -> None:
    await _record_sent(ctx, [item])


async def _record_sent(ctx: SenderContext, items: Sequence[tuple[int, str | None]]) -> list[None]:
    wamids = dict(items)
    async with ctx.db.session() as session:
        rows = await repo.mark_sent(session, items)
        events: list[Event] = []
        for row in rows:
            if Status(row.status) in (Status.FAILED, Status.SUPPRESSED):  # a webhook overtook us
                continue
            wa_message_id = wamids[int(row.seq)]
            payload = outcome(row, wa_message_id=wa_message_id, status=DeliveryStatus.SENT)
            events.append(result_event(MessageSent, row, payload))
        if events:
            await add_to_outbox(session, *events)
    return [None] * len(items)


async def failed(
    ctx: SenderContext,
    seq: int,
    reason: str,
    *,
    error: PlatformError | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """The message will not be sent: record why and emit MessageFailed.

    A part of a long text that failed for good takes the text's later parts with it (reason
    `earlier_part_failed`): the customer would otherwise get the text with a hole in it. Not
    for `outcome_unknown`, whose part most likely went out."""
    async with ctx.db.session() as session:
        row = await repo.get(session, seq, lock=True)
        if row is None or Status(row.status) not in (Status.QUEUED, Status.CLAIMED, Status.CALLING):
            return
        await repo.set_fields(
            session,
            seq,
            status=Status.FAILED,
            lease_until=None,
            reason=reason,
            error=error.model_dump(mode="json") if error else None,
        )
        payload = outcome(
            row, status=DeliveryStatus.FAILED, reason=reason, error=error, details=details
        )
        events: list[Event] = [result_event(MessageFailed, row, payload)]
        if row.parts > 1 and reason != OUTCOME_UNKNOWN:
            for later in await repo.later_parts(session, row.command_id, row.part):
                await repo.set_fields(
                    session, later.seq, status=Status.FAILED, reason=EARLIER_PART_FAILED
                )
                because = {"failed_part": row.part, "failed_because": reason}
                failed_too = outcome(
                    later, status=DeliveryStatus.FAILED, reason=EARLIER_PART_FAILED, details=because
                )
                events.append(result_event(MessageFailed, later, failed_too))
        await add_to_outbox(session, *events)


async def suppressed(ctx: SenderContext, seq: int, mode: str, epoch: int) -> None:
    """An AI message lost the conversation to a human: record and emit MessageSuppressed."""
    async with ctx.db.session() as session:
        row = await repo.get(session, seq, lock=True)
        if row is None or Status(row.status) not in (Status.CLAIMED, Status.CALLING):
            return
        await repo.set_fields(
            session, seq, status=Status.SUPPRESSED, lease_until=None, reason="fenced"
        )
        details = {"mode": mode, "epoch": epoch, "command_epoch": row.control_epoch}
        payload = outcome(row, reason="fenced", details=details)
        await add_to_outbox(session, result_event(MessageSuppressed, row, payload))


async def recover(ctx: SenderContext) -> int:
    """Finish what dead workers left: re-queue stale claims, resolve stale calls.

    A stale `claimed` message never reached WhatsApp: it is simply queued again. A stale
    `calling` message may or may not have been sent (see `dispatch.send`); it is failed with
    reason `outcome_unknown` rather than sent twice, and a status webhook for it (matched by
    its callback data) turns it back into a sent message.
    """
    async with ctx.db.session() as session:
        requeued = await repo.release_stale_claims(session)
        stale = await repo.stale_calls(session)
        for row in stale:
            await repo.set_fields(
                session, row.seq, status=Status.FAILED, lease_until=None, reason=OUTCOME_UNKNOWN
            )
            details = {
                "explanation": "the sender stopped while calling WhatsApp; the message "
                "may or may not have been delivered and is not re-sent"
            }
            payload = outcome(
                row, status=DeliveryStatus.FAILED, reason=OUTCOME_UNKNOWN, details=details
            )
            await add_to_outbox(session, result_event(MessageFailed, row, payload))
    if requeued or stale:
        log.warning("recovered %d claimed and %d in-call messages", requeued, len(stale))
    return requeued + len(stale)
