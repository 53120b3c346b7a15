"""Queries on the sender's tables; every function runs inside the caller's transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_sender.db.models import messages, windows
from baton_sender.dispatch.order import Bound
from baton_sender.status import Status

# The head of each customer's pending list is the only message of that customer that may be
# claimed, and only while it is queued and due: one in flight per customer, in the order their
# `wa.outbound` entries were produced (`stream_ms`, `stream_seq`, then `seq` for the parts of one
# command). Only messages whose entry lies below `:below_ms`/`:below_seq` may go, and for a
# customer in `:held` ({number: {recipient: [ms, seq]}}: one lookup per row walked, however
# many customers are held; jsonb arrays compare element by element) only those below the
# customer's held entry: entries from
# there on may still be recorded by another replica, and one of them could come first for
# this customer (see `dispatch.order`). The query walks queued messages in that order (index
# `messages_queued`) and checks each has no earlier pending message (index `messages_pending`),
# so its cost follows what it claims, not the size of the backlog.
_CLAIM_HEADS = text("""
WITH heads AS MATERIALIZED (
    SELECT q.seq FROM messages q
    WHERE q.status = 'queued' AND (q.not_before IS NULL OR q.not_before <= now())
    AND (q.stream_ms, q.stream_seq) < (:below_ms, :below_seq)
    AND COALESCE(
        jsonb_build_array(q.stream_ms, q.stream_seq)
        < (CAST(:held AS jsonb) -> q.phone_number_id -> q.recipient),
        true
    )
    AND NOT EXISTS (
        SELECT 1 FROM messages p
        WHERE p.phone_number_id = q.phone_number_id AND p.recipient = q.recipient
        AND p.status IN ('queued', 'claimed', 'calling')
        AND (p.stream_ms, p.stream_seq, p.seq) < (q.stream_ms, q.stream_seq, q.seq)
    )
    ORDER BY q.stream_ms, q.stream_seq, q.seq
    LIMIT :limit
    FOR UPDATE OF q SKIP LOCKED
)
UPDATE messages m
SET status = 'claimed', lease_until = now() + make_interval(secs => :lease), updated_at = now()
FROM heads
WHERE m.seq = heads.seq AND m.status = 'queued'
RETURNING m.*, (
    SELECT w.last_inbound_at FROM windows w
    WHERE w.phone_number_id = m.phone_number_id AND w.customer = m.recipient
) AS last_inbound_at
""")
# The claim is a prepared statement (asyncpg): after five runs PostgreSQL may switch to a
# generic plan, made once from the statistics of that moment. Made on a near-empty table (a
# fresh or truncated schema, never analyzed) it re-ran the LIMIT subquery for every queued row
# with a sequential scan inside (cubic in the backlog: one claim ran for minutes while nothing
# was sent). So the heads are a MATERIALIZED CTE (computed once whatever the plan), and each
# claim is planned for the data it sees (`plan_cache_mode = force_custom_plan`)...
# ...and planned to walk `messages_queued` in order and stop at the LIMIT. Statistics of a
# young or truncated table (no autoanalyze yet) guessed ~100 queued rows, so PostgreSQL chose a
# bitmap scan of every queued row plus a sort: 68 ms per claim with 15,000 queued (growing with
# the backlog) against 1.2 ms for the ordered walk, which makes the claim loop the sender's
# bottleneck at 1,000 msg/s. Without sorts, the ordered index walk is the only cheap plan.
# Both are `SET LOCAL`s of the claim's transaction, made in one round trip.
_CLAIM_PLANNING = text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('enable_sort', 'off', true)"
)


# Only under the claim this worker holds: the claim's lease is its token. A worker that
# stalled past its lease finds the message re-queued (and maybe claimed, even sent, by
# another): it must not call WhatsApp again.
_BEGIN_CALLS = text("""
UPDATE messages m
SET status = 'calling', attempts = v.attempts, updated_at = now(),
    lease_until = now() + make_interval(secs => :lease)
FROM unnest(CAST(:seqs AS bigint[]), CAST(:attempts AS integer[]),
    CAST(:claims AS timestamptz[])) AS v(seq, attempts, claim)
WHERE m.seq = v.seq AND m.status = 'claimed' AND m.lease_until IS NOT DISTINCT FROM v.claim
RETURNING m.seq
""")

# A failed or suppressed message stays so (a failed webhook overtook the answer), a delivered
# or read one keeps its status; anything else becomes sent. The wamid is stored either way.
_MARK_SENT = text("""
UPDATE messages m
SET status = CASE WHEN m.status IN ('failed', 'suppressed', 'delivered', 'read', 'played')
                  THEN m.status ELSE 'sent' END,
    wa_message_id = coalesce(m.wa_message_id, v.wamid), lease_until = NULL, updated_at = now()
FROM unnest(CAST(:seqs AS bigint[]), CAST(:wamids AS text[])) AS v(seq, wamid)
WHERE m.seq = v.seq
RETURNING m.seq, m.status, m.command_id, m.part, m.parts, m.phone_number_id, m.recipient,
    m.conversation_id, m.author, m.kind, m.text, m.wa_message_id, m.attempts, m.request_event
""")


# Columns of a queued message, in the order `_ADD_MESSAGES` takes them (one array each).
_MESSAGE_COLUMNS = (
    "command_id", "part", "parts", "phone_number_id", "recipient", "conversation_id", "author",
    "kind", "text", "control_epoch", "command", "request_event", "status", "stream_ms",
    "stream_seq",
)  # fmt: skip
# One statement text whatever the batch size, so it is prepared once (`executemany` /
# insertmanyvalues compiled and prepared a new statement per batch size). Rows keep the given
# order: `WITH ORDINALITY` + `ORDER BY` make the identity `seq`s follow it.
_ADD_MESSAGES = text("""
INSERT INTO messages (command_id, part, parts, phone_number_id, recipient, conversation_id,
    author, kind, text, control_epoch, command, request_event, status, stream_ms, stream_seq)
SELECT v.command_id, v.part, v.parts, v.phone_number_id, v.recipient, v.conversation_id,
    v.author, v.kind, v.text, v.control_epoch, v.command::jsonb, v.request_event, v.status,
    v.stream_ms, v.stream_seq
FROM unnest(
    CAST(:command_id AS text[]), CAST(:part AS integer[]), CAST(:parts AS integer[]),
    CAST(:phone_number_id AS text[]), CAST(:recipient AS text[]),
    CAST(:conversation_id AS text[]), CAST(:author AS text[]), CAST(:kind AS text[]),
    CAST(:text AS text[]), CAST(:control_epoch AS bigint[]), CAST(:command AS text[]),
    CAST(:request_event AS text[]), CAST(:status AS text[]), CAST(:stream_ms AS bigint[]),
    CAST(:stream_seq AS bigint[])
) WITH ORDINALITY AS v(command_id, part, parts, phone_number_id, recipient, conversation_id,
    author, kind, text, control_epoch, command, request_event, status, stream_ms, stream_seq,
    ord)
ORDER BY v.ord
ON CONFLICT (command_id, part) DO NOTHING
RETURNING seq
""")
_CLAIM_INBOX = text("""
INSERT INTO inbox (consumer, event_id)
SELECT :consumer, unnest(CAST(:event_ids AS uuid[]))
ON CONFLICT DO NOTHING
RETURNING event_id
""")


async def add_messages(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert queued messages in the given order (their `seq` order); a (command_id, part)
    already recorded, or repeated within `rows`, is skipped. Returns how many are new."""
    if not rows:
        return 0
    params: dict[str, list[Any]] = {name: [] for name in _MESSAGE_COLUMNS}
    for row in rows:
        for name in _MESSAGE_COLUMNS:
            value = row.get(name)
            params[name].append(json.dumps(value) if name == "command" else value)
    params["part"] = [int(part or 0) for part in params["part"]]
    params["parts"] = [int(parts or 1) for parts in params["parts"]]
    params["stream_ms"] = [int(ms or 0) for ms in params["stream_ms"]]
    params["stream_seq"] = [int(seq or 0) for seq in params["stream_seq"]]
    result = await session.execute(_ADD_MESSAGES, params)
    return len(result.all())


async def claim_inbox_many(
    session: AsyncSession, consumer: str, event_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """`claim_inbox` for many events in one statement; returns the ids not processed before."""
    if not event_ids:
        return set()
    result = await session.execute(
        _CLAIM_INBOX, {"consumer": consumer, "event_ids": list(event_ids)}
    )
    return {uuid.UUID(str(row.event_id)) for row in result.all()}


async def claim_heads(
    session: AsyncSession, limit: int, lease_seconds: float, below: Bound
) -> list[Row[Any]]:
    """Claim up to `limit` due messages, at most one per customer, oldest first, among those
    whose `wa.outbound` entry `below` allows (`Bound.allows`).

    Each row carries the message and `last_inbound_at` (the customer's window), so sending it
    needs no further read. Planned for the data of the moment, as an ordered walk of the queue
    (see `_CLAIM_PLANNING`)."""
    await session.execute(_CLAIM_PLANNING)
    params = claim_parameters(limit, lease_seconds, below)
    result = await session.execute(_CLAIM_HEADS, params)
    return sorted(result.all(), key=lambda row: (row.stream_ms, row.stream_seq, row.seq))


def claim_parameters(limit: int, lease_seconds: float, below: Bound) -> dict[str, Any]:
    """The parameters of `_CLAIM_HEADS`."""
    held: dict[str, dict[str, list[int]]] = {}
    for (number, recipient), (ms, seq) in below.held.items():
        held.setdefault(number, {})[recipient] = [ms, seq]
    return {
        "limit": limit,
        "lease": lease_seconds,
        "below_ms": below.everyone[0],
        "below_seq": below.everyone[1],
        "held": json.dumps(held),
    }


async def get(session: AsyncSession, seq: int, *, lock: bool = False) -> Row[Any] | None:
    """One message by seq, optionally locked for update."""
    stmt = select(messages).where(messages.c.seq == seq)
    return (await session.execute(stmt.with_for_update() if lock else stmt)).first()


async def begin_calls(
    session: AsyncSession, calls: Sequence[tuple[int, int, datetime]], lease_seconds: float
) -> set[int]:
    """Mark messages `calling` with their attempt counts, in one statement, each only while
    still claimed under its claim (`(seq, attempts, claim lease)`); returns the seqs marked."""
    ordered = sorted(calls)
    result = await session.execute(
        _BEGIN_CALLS,
        {
            "seqs": [seq for seq, _, _ in ordered],
            "attempts": [attempts for _, attempts, _ in ordered],
            "claims": [claim for _, _, claim in ordered],
            "lease": lease_seconds,
        },
    )
    return {int(seq) for seq in result.scalars()}


async def requeue(session: AsyncSession, seq: int, **values: Any) -> None:
    """Put a message being sent back in the queue, unless it is no longer being sent (its
    claim lapsed and recovery settled it, or a status webhook overtook the call)."""
    await session.execute(
        update(messages)
        .where(messages.c.seq == seq, messages.c.status.in_(("claimed", "calling")))
        .values(updated_at=func.now(), status="queued", **values)
    )


async def mark_sent(
    session: AsyncSession, results: Sequence[tuple[int, str | None]]
) -> list[Row[Any]]:
    """Record answered calls, `(seq, wa_message_id)` each, in one statement (see `_MARK_SENT`);
    returns the updated rows (with what a result event needs), in seq order."""
    ordered = sorted(results, key=lambda r: r[0])
    result = await session.execute(
        _MARK_SENT,
        {"seqs": [seq for seq, _ in ordered], "wamids": [wamid for _, wamid in ordered]},
    )
    return sorted(result.all(), key=lambda row: int(row.seq))


async def get_by_command(session: AsyncSession, command_id: str) -> list[Row[Any]]:
    """Every part of one command, in order."""
    stmt = select(messages).where(messages.c.command_id == command_id).order_by(messages.c.part)
    return list((await session.execute(stmt)).all())


async def later_parts(session: AsyncSession, command_id: str, part: int) -> list[Row[Any]]:
    """The parts of a long text after `part` still waiting to be sent, locked."""
    stmt = (
        select(messages)
        .where(
            messages.c.command_id == command_id,
            messages.c.part > part,
            messages.c.status == Status.QUEUED,
        )
        .order_by(messages.c.part)
        .with_for_update()
    )
    return list((await session.execute(stmt)).all())


async def set_fields(session: AsyncSession, seq: int, **values: Any) -> None:
    """Update one message (and its `updated_at`)."""
    await session.execute(
        update(messages).where(messages.c.seq == seq).values(updated_at=func.now(), **values)
    )


async def find_sent(
    session: AsyncSession, wa_message_id: str, callback: tuple[str, int] | None
) -> Row[Any] | None:
    """The message a status webhook is about, locked: by wamid, else by our callback data."""
    stmt = select(messages).where(messages.c.wa_message_id == wa_message_id).with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None and callback is not None:
        stmt = (
            select(messages)
            .where(messages.c.command_id == callback[0], messages.c.part == callback[1])
            .with_for_update()
        )
        row = (await session.execute(stmt)).first()
    return row


async def release_stale_claims(session: AsyncSession) -> int:
    """Put back claimed messages whose worker died before calling WhatsApp; returns count."""
    stmt = (
        update(messages)
        .where(messages.c.status == Status.CLAIMED, messages.c.lease_until < func.now())
        .values(status=Status.QUEUED, lease_until=None, updated_at=func.now())
    )
    result = await session.execute(stmt.returning(messages.c.seq))
    return len(result.all())


async def stale_calls(session: AsyncSession) -> list[Row[Any]]:
    """Messages whose worker died during the call (outcome unknown), locked."""
    stmt = (
        select(messages)
        .where(messages.c.status == Status.CALLING, messages.c.lease_until < func.now())
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).all())


async def touch_window(
    session: AsyncSession, phone_number_id: str, customer: str, at: datetime
) -> None:
    """Record an inbound message: the customer's window runs from the latest one."""
    stmt = insert(windows).values(
        phone_number_id=phone_number_id, customer=customer, last_inbound_at=at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["phone_number_id", "customer"],
        set_={"last_inbound_at": func.greatest(windows.c.last_inbound_at, at)},
    )
    await session.execute(stmt)


async def last_inbound(
    session: AsyncSession, phone_number_id: str, customer: str
) -> datetime | None:
    """When the customer last wrote to this business number, if ever."""
    stmt = select(windows.c.last_inbound_at).where(
        windows.c.phone_number_id == phone_number_id, windows.c.customer == customer
    )
    return (await session.execute(stmt)).scalar_one_or_none()
