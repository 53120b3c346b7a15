"""Sending one claimed message, and what a crash at each point does.

The steps, each a separate commit:

1. `wa.outbound` handler: the command is recorded (`queued`), keyed by command id. A crash
   before this commit leaves the stream entry pending: it is redelivered and recorded then.
2. Dispatcher: the message is `claimed` (with a lease). Checks run: request body and limits,
   the customer-service window, the token-error pause, rate limits. A crash here leaves a
   `claimed` row whose lease runs out; it is queued again and sent later. Nothing was sent.
3. `calling` is committed, then the fencing check reads the control state (one Redis round
   trip), then the HTTP call goes out.
4. The answer (wamid, or error) is recorded with its outbox event in one transaction.

THE UNAVOIDABLE WINDOW is between the commit of step 3 and the commit of step 4: WhatsApp has
no idempotency key, so a process that dies after its request left but before the answer was
recorded cannot know whether the customer got the message. It lasts one Graph call (tens to
hundreds of milliseconds) plus one small commit. The sender chooses at most once there: the
recovery marks such a message failed with reason `outcome_unknown` (operators see it) instead
of risking a duplicate, and WhatsApp's status webhook for it - matched through
`biz_opaque_callback_data` - turns it back into `sent`/`delivered`/`read` if it did go out.
Network errors are told apart the same way (the reference: "treat network timeouts on send
as non-idempotent"): one before the request was written (no connection could be had) is
retried; one after it (a timeout or reset while waiting for the answer) ends the message as
`outcome_unknown`, like a crash in the call. Read receipts and typing indicators, harmless to
repeat, are retried either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from baton_sender import keys, metrics
from baton_sender.context import SenderContext
from baton_sender.dispatch import record
from baton_sender.dispatch.backoff import retry_delay
from baton_sender.fencing import fence_of
from baton_sender.status import OUTCOME_UNKNOWN
from baton_sender.whatsapp.errors import (
    THROUGHPUT_CODE,
    WINDOW_CLOSED_CODE,
    InvalidMessageError,
    NetworkError,
    WhatsAppError,
)
from baton_sender.whatsapp.payloads import WINDOW_FREE_KINDS, build_body
from baton_shared.events import NOT_MESSAGES, OutboundCommand

log = logging.getLogger(__name__)
# Rate-limit slots up to this far ahead are reserved and slept through; later ones release
# the claim.
MAX_INLINE_WAIT = 1.0
PERMIT_TRIES = 3  # asks for a permit before a message held by its customer goes back to the queue
FENCE_LOST_RETRY_SECONDS = 1.0  # how often a message waiting for a lost fence looks again
COSMETIC_ATTEMPTS = 2  # tries of a read receipt or typing indicator (see `_retry_or_fail`)


async def send_one(ctx: SenderContext, row: Any) -> None:
    """Take one claimed message (a `repo.claim_heads` row) through checks, the call, and the
    recording of its outcome."""
    seq = int(row.seq)
    command = OutboundCommand.model_validate(row.command)
    callback = f"{row.command_id}#{row.part}"
    try:
        body = build_body(command, None if command.kind in NOT_MESSAGES else callback)
    except InvalidMessageError as exc:
        metrics.OUTCOMES.labels("invalid", row.kind).inc()
        await record.failed(ctx, seq, "invalid", details={"problem": str(exc)})
        return
    if not await _window_allows(ctx, row, command):
        return
    if not await _permits(ctx, row, command):
        return
    attempts = row.attempts + 1
    if not await record.begin_call(ctx, seq, attempts, row.lease_until):
        # This worker stalled past its claim's lease: the message is someone else's now.
        log.warning("claim of message %s lapsed before its call; not sent by this worker", seq)
        metrics.OUTCOMES.labels("claim_lapsed", row.kind).inc()
        return
    fence = await fence_of(ctx, row)
    if fence is not None and fence.lost:
        # The control state this message depends on is missing: wait for its resync.
        metrics.OUTCOMES.labels("fence_lost", row.kind).inc()
        await record.release(ctx, seq, FENCE_LOST_RETRY_SECONDS, attempts=attempts - 1)
        return
    if fence is not None:
        metrics.OUTCOMES.labels("suppressed", row.kind).inc()
        await record.suppressed(ctx, seq, fence.mode, fence.epoch)
        return
    started = time.perf_counter()
    try:
        wamid = await ctx.client.send(row.phone_number_id, body)
    except WhatsAppError as exc:
        metrics.WA_ERRORS.labels(str(exc.code)).inc()
        await _on_error(ctx, row, attempts, exc)
        return
    except NetworkError as exc:
        metrics.WA_ERRORS.labels("network").inc()
        if exc.maybe_sent and command.kind not in NOT_MESSAGES:
            # Written, then no answer: WhatsApp may have accepted it. At most once, as for a
            # crash in the call (see the module's docstring); a status webhook corrects it.
            metrics.OUTCOMES.labels(OUTCOME_UNKNOWN, row.kind).inc()
            details = {
                "network_error": str(exc),
                "explanation": "no answer from WhatsApp after the request was sent; the "
                "message may or may not have been delivered and is not re-sent",
            }
            await record.failed(ctx, seq, OUTCOME_UNKNOWN, details=details)
        else:  # never left (no connection), or a read receipt / typing call: safe again
            await _retry_or_fail(ctx, row, attempts, None, {"network_error": str(exc)})
        return
    finally:
        metrics.CALL_SECONDS.observe(time.perf_counter() - started)
    metrics.OUTCOMES.labels("sent", row.kind).inc()
    await record.sent(ctx, seq, wamid)


async def _window_allows(ctx: SenderContext, row: Any, command: OutboundCommand) -> bool:
    """False (after failing or re-queueing the message) when the window forbids sending now."""
    if command.kind in WINDOW_FREE_KINDS:
        return True
    last = row.last_inbound_at  # read by the claim
    now = datetime.now(UTC)
    window = timedelta(hours=ctx.settings.window_hours)
    if last is not None and now - last < window:
        return True
    grace = timedelta(seconds=ctx.settings.window_grace_seconds)
    if now - row.created_at < grace:
        # The inbound message that (re)opened the window may still be on its way to us.
        await record.release(ctx, row.seq, 1.0)
        return False
    metrics.OUTCOMES.labels("window_closed", row.kind).inc()
    details = {
        "last_inbound_at": last.isoformat() if last else None,
        "window_hours": ctx.settings.window_hours,
    }
    await record.failed(ctx, row.seq, "window_closed", details=details)
    return False


async def _permits(ctx: SenderContext, row: Any, command: OutboundCommand) -> bool:
    """Reserve a rate-limit slot and wait for it; release the claim when the wait is long or
    during a pause. A message held by its customer's pacing for a short while waits here and
    asks again (its customer's slot is not reserved ahead: see `ratelimit`)."""
    customer = None if command.kind in NOT_MESSAGES else row.recipient
    waited = 0.0
    for _ in range(PERMIT_TRIES):
        permit = await ctx.limiter.reserve(row.phone_number_id, customer, MAX_INLINE_WAIT)
        if permit.paused > 0:
            metrics.AUTH_PAUSED.set(int(permit.token_pause))
            await record.release(ctx, row.seq, permit.paused)
            return False
        metrics.AUTH_PAUSED.set(0)
        if permit.reserved or permit.wait > MAX_INLINE_WAIT:
            break
        metrics.RATE_LIMITED.inc()
        waited += permit.wait
        await asyncio.sleep(permit.wait)
    if not permit.reserved:
        metrics.RATE_LIMITED.inc()
        await record.release(ctx, row.seq, permit.wait)
        return False
    metrics.LIMITER_WAIT.observe(waited + permit.wait)
    if permit.wait > 0:
        metrics.RATE_LIMITED.inc()
        await asyncio.sleep(permit.wait)
    return True


async def _on_error(ctx: SenderContext, row: Any, attempts: int, exc: WhatsAppError) -> None:
    if exc.token_error:
        metrics.TOKEN_ERRORS.inc()
        metrics.AUTH_PAUSED.set(1)
        pause = ctx.settings.auth_pause_seconds
        log.error(
            "ALERT: WhatsApp refused the access token (%s); pausing sends %.0fs", exc.code, pause
        )
        await ctx.bus.redis.set(ctx.bus.key(keys.auth_pause()), "1", px=max(1, int(pause * 1000)))
        # The call did not count against the message: the token is at fault, not the message.
        await record.release(ctx, row.seq, pause, attempts=attempts - 1)
        return
    details = {"http_status": exc.http_status}
    if exc.code == THROUGHPUT_CODE:
        # The number is over its throughput: every message from it would draw 130429 now, so
        # all of them wait, on every replica, not only this one.
        s = ctx.settings
        pause = retry_delay(attempts, base=s.retry_base_seconds, cap=s.retry_max_seconds)
        metrics.NUMBER_PAUSES.inc()
        log.warning(
            "number %s over its throughput (130429); pausing its sends %.1fs",
            row.phone_number_id,
            pause,
        )
        await ctx.limiter.pause_number(row.phone_number_id, pause)
    if exc.transient:
        await _retry_or_fail(ctx, row, attempts, exc, details)
        return
    reason = "window_closed" if exc.code == WINDOW_CLOSED_CODE else "rejected"
    metrics.OUTCOMES.labels(reason, row.kind).inc()
    await record.failed(ctx, row.seq, reason, error=exc.as_platform_error(), details=details)


async def _retry_or_fail(
    ctx: SenderContext,
    row: Any,
    attempts: int,
    exc: WhatsAppError | None,
    details: dict[str, Any],
) -> None:
    code = exc.code if exc else None
    # A read receipt or typing indicator heads its customer's queue like a message, and the
    # answer waits behind it: it gets one retry, not the full budget (WhatsApp drops the
    # indicator after 25 s anyway, and backing off up to half a minute delays the answer).
    limit = (
        min(COSMETIC_ATTEMPTS, ctx.settings.max_attempts)
        if row.kind in NOT_MESSAGES
        else (ctx.settings.max_attempts)
    )
    if attempts >= limit:
        metrics.OUTCOMES.labels("retries_exhausted", row.kind).inc()
        await record.failed(
            ctx,
            row.seq,
            "retries_exhausted",
            error=exc.as_platform_error() if exc else None,
            details=details | {"attempts": attempts},
        )
        return
    metrics.RETRIES.labels(str(code) if code is not None else "network").inc()
    s = ctx.settings
    delay = retry_delay(attempts, base=s.retry_base_seconds, cap=s.retry_max_seconds, code=code)
    log.warning(
        "transient failure %s for %s (attempt %d); retry in %.1fs",
        code or details,
        row.command_id,
        attempts,
        delay,
    )
    await record.release(ctx, row.seq, delay)
