"""Releasing a conversation's due burst as one turn: one transaction that records the turn,
assigns its messages and stages `TurnReady` in the outbox, under the conversation's row lock."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from baton_buffer import metrics
from baton_buffer.context import PRODUCER, BufferContext
from baton_buffer.db import repo
from baton_buffer.rules import Closing, closing, next_check
from baton_shared.db import Staged, publish_committed, stage_entries
from baton_shared.events import (
    TurnCloseReason,
    TurnReady,
    new_traceparent,
    random_uuid,
    trace_id_of,
)
from baton_shared.randomness import random_bits
from baton_shared.streams.bus import stream_fields

log = logging.getLogger(__name__)

RECHECK_SECONDS = 30.0  # how often a turn over its time is looked at while agents are behind
_TURN_READY = TurnReady.model_fields["event_type"].default
_TURN_READY_VERSION = TurnReady.model_fields["schema_version"].default
_TURN_NS = uuid.UUID("2b7d8c2e-5f0a-4e5b-9a61-7c3f1d2e4b90")


def turn_id_for(conversation_id: str, sequence: int) -> uuid.UUID:
    """The id of a conversation's n-th turn: the same turn always gets the same id."""
    return uuid.uuid5(_TURN_NS, f"{conversation_id}:{sequence}")


async def release(ctx: BufferContext, conversation_id: str) -> float | None:
    """Release the conversation's burst if it is due; returns when to look at it next."""
    return (await release_many(ctx, [conversation_id]))[conversation_id]


async def release_many(
    ctx: BufferContext, conversation_ids: Sequence[str], *, skip_locked: bool = False
) -> dict[str, float | None]:
    """Release the due bursts of these conversations in one transaction, under their row
    locks; returns when to look at each next (None: nothing can happen until it changes).

    With `skip_locked`, a conversation whose row another transaction holds is not waited
    for: it is looked at again at once (by the ticker), see `release_due`."""
    async with ctx.db.session() as session:
        released = await release_due(session, ctx, conversation_ids, skip_locked=skip_locked)
    await released.committed(ctx)
    return released.next_at


async def look(ctx: BufferContext, conversation_ids: Sequence[str]) -> dict[str, float | None]:
    """Release the bursts of these conversations that are due now; returns when to look at
    each next (None: nothing can happen until it changes).

    The states are read without locks first, and only the conversations due now are locked,
    by `release_many`, which decides again under the lock: a row lock is a write, and most
    looks release nothing (a message recorded in a burst that is still open, a timer set by
    an earlier message of a burst that has grown since). A commit this read misses is
    followed by its writer's own look, so nothing due is left without a timer.

    A conversation whose row another transaction holds is not waited for (waiting serialised
    the writers and the ticker on each other under load): it is due again at once."""
    if not conversation_ids:
        return {}
    async with ctx.db.sessions() as session:
        states = await repo.schedule_states(session, conversation_ids)
    now = ctx.clock()
    next_at: dict[str, float | None] = dict.fromkeys(conversation_ids)
    due: list[str] = []
    for conversation_id, state in states.items():
        at = next_check(ctx.rules, state.in_flight_since, state.arrivals)
        if at is not None and at <= now:
            due.append(conversation_id)
        else:
            next_at[conversation_id] = at
    if due:
        next_at.update(await release_many(ctx, due, skip_locked=True))
    return next_at


async def release_or_schedule(ctx: BufferContext, conversation_ids: Sequence[str]) -> None:
    """After a writer's commit: release the bursts of these conversations that are due now,
    and set the timers of the others (`look`).

    Called after the commit, so the last writer of a conversation sees every earlier commit;
    an earlier writer can only leave an earlier (harmless) deadline, as timers only move
    earlier."""
    next_at = await look(ctx, conversation_ids)
    await ctx.timers.schedule_many({c: at for c, at in next_at.items() if at is not None})


@dataclass
class Released:
    """What `release_due` did inside its caller's transaction.

    Attributes:
        next_at: when to look at each conversation next (None: not until it changes).
        opened: closing rule, message count and due time of each released turn.
        staged: the `TurnReady` events staged in the outbox, to publish once committed.
    """

    next_at: dict[str, float | None]
    opened: list[tuple[TurnCloseReason, int, float]] = field(default_factory=list)
    staged: list[Staged] = field(default_factory=list)

    async def committed(self, ctx: BufferContext) -> None:
        """Call once the transaction committed: publish the `TurnReady` events and count the
        turns.

        Published here, not by the outbox relay's next round: the relay publishes a schema's
        events one batch at a time in commit order, which a release has no need for (a
        conversation has one turn in flight, so never two `TurnReady` waiting), and waiting
        for it was most of a turn's lateness under load. The rows stay in the outbox until
        published, so a crash or a Redis error here leaves them to the relay."""
        await publish_committed(ctx.db, ctx.timers.bus, self.staged)
        now = ctx.clock()
        for closed_by, size, due in self.opened:
            metrics.TURNS_RELEASED.labels(closed_by.value).inc()
            metrics.TURN_MESSAGES.observe(size)
            metrics.RELEASE_LATENESS.observe(max(0.0, now - due))

    def deadlines(self) -> dict[str, float]:
        """The next looks that are due at all, for `Timers.schedule_many`."""
        return {conv: at for conv, at in self.next_at.items() if at is not None}


async def release_due(
    session: AsyncSession,
    ctx: BufferContext,
    conversation_ids: Sequence[str],
    *,
    skip_locked: bool = False,
) -> Released:
    """Release the due bursts of these conversations inside the caller's transaction, which
    then holds their row locks until it ends.

    Any writer may call this right after changing a conversation (a message recorded, a turn
    completed), so a burst that is due already goes out in the same transaction instead of
    waiting for the ticker; the row lock, the in-flight check and `turn_id IS NULL` keep a
    turn from being released twice whoever calls.

    With `skip_locked`, the conversations whose rows another transaction holds are skipped
    and due again now: the holder may have read their pending messages before the caller's
    commit, so the ticker must look at them again (under a waiting lock).
    """
    now = ctx.clock()
    at = datetime.fromtimestamp(now, UTC)
    out = Released(dict.fromkeys(conversation_ids))
    convs = await repo.lock_conversations(session, conversation_ids, skip_locked=skip_locked)
    if skip_locked:
        for conversation_id in conversation_ids:
            if conversation_id not in convs:
                out.next_at[conversation_id] = now
    free: list[str] = []
    behind: str | None = None
    asked = False
    deferred = 0
    for conversation_id, conv in convs.items():
        if conv.in_flight_turn_id is None:
            free.append(conversation_id)
            continue
        stuck_at = conv.in_flight_since.timestamp() + ctx.rules.stuck_turn_seconds
        if now < stuck_at:
            out.next_at[conversation_id] = float(stuck_at)
            continue
        if not asked:  # once per call, and only when a turn is over its time
            behind, asked = await ctx.agents.behind(), True
        if behind is not None:  # waiting for an agent, not lost: look again later
            deferred += 1
            out.next_at[conversation_id] = now + min(ctx.rules.stuck_turn_seconds, RECHECK_SECONDS)
            continue
        await repo.time_out_turn(session, conversation_id, conv.in_flight_turn_id, at)
        metrics.STUCK_TURNS.inc()
        log.warning(
            "turn %s not completed after %ss; releasing the next turn",
            conv.in_flight_turn_id,
            ctx.rules.stuck_turn_seconds,
            extra={"conversation_id": conversation_id},
        )
        free.append(conversation_id)
    if deferred:
        metrics.STUCK_DEFERRED.inc(deferred)
        log.warning(
            "%d turn(s) in flight for over %ss, but %s: waiting for the agents",
            deferred,
            ctx.rules.stuck_turn_seconds,
            behind,
        )
    # Callers pass conversations found due by an unlocked read (or just completed), so the
    # messages themselves are read at once: one statement, not arrivals first.
    pending = await repo.pending_messages_of(session, free)
    due: dict[str, Closing] = {}
    for conversation_id, burst in pending.items():
        close = closing(ctx.rules, [m.arrived_at.timestamp() for m in burst])
        if close.due > now:
            out.next_at[conversation_id] = close.due
        else:
            due[conversation_id] = close
    new_turns: list[repo.NewTurn] = []
    for conversation_id, close in due.items():
        burst = pending[conversation_id]
        cap = ctx.rules.turn_cap
        taken = list(burst if cap is None else burst[:cap])
        conv = convs[conversation_id]
        sequence = conv.last_sequence + 1
        turn_id = turn_id_for(conversation_id, sequence)
        new_turns.append(
            repo.NewTurn(
                conversation_id,
                turn_id,
                sequence,
                close.closed_by.value,
                [m.message_id for m in taken],
            )
        )
        out.staged.append(_turn_ready(conv, turn_id, sequence, close.closed_by, taken))
        out.opened.append((close.closed_by, len(taken), close.due))
        out.next_at[conversation_id] = now + ctx.rules.stuck_turn_seconds
    await repo.open_turns(session, new_turns, at)
    await stage_entries(session, out.staged, wake_relay=False)  # see `committed`
    return out


def _turn_ready(
    conv: Row[Any],
    turn_id: uuid.UUID,
    sequence: int,
    closed_by: TurnCloseReason,
    taken: Sequence[Row[Any]],
) -> Staged:
    """The `TurnReady` stream entry, continuing the trace of the turn's latest message.

    Its JSON is written here, not through the `TurnReady` model: the messages are spliced in
    as the JSON texts recorded (each validated as it arrived), and validating the turn and
    serialising it again cost ~80 us per turn, a fifth of the buffer's time per message under
    load. A unit test holds the entry equal to the model's
    (tests/unit/buffer/test_turn_ready_entry.py), and the agent validates every event it
    reads."""
    cause = max(taken, key=lambda m: m.arrival_seq)
    event_id = random_uuid()
    envelope = orjson.dumps(
        {
            "event_id": event_id,
            "event_type": _TURN_READY,
            "schema_version": _TURN_READY_VERSION,
            "occurred_at": datetime.now(UTC),
            "producer": PRODUCER,
            "conversation_id": conv.conversation_id,
            "correlation_id": str(cause.correlation_id),  # asyncpg's UUID type: as text
            "causation_id": str(cause.event_id),
            "traceparent": _traceparent(cause.traceparent),
        },
        option=orjson.OPT_UTC_Z,
    )
    turn = orjson.dumps(
        {
            "turn_id": turn_id,
            "phone_number_id": conv.phone_number_id,
            "wa_id": conv.customer_id,
            "sequence": sequence,
            "closed_by": closed_by.value,
        }
    )
    messages = ",".join(m.payload for m in taken)
    body = f'{envelope[:-1].decode()},"payload":{turn[:-1].decode()},"messages":[{messages}]}}}}'
    fields = stream_fields(
        str(event_id), _TURN_READY, _TURN_READY_VERSION, conv.conversation_id, body
    )
    return Staged(event_id, TurnReady.stream, fields)


def _traceparent(cause: str) -> str:
    """A new span id under the cause's trace (`new_traceparent` without the span lookup and
    the system entropy call, which showed in profiles; the ticker runs outside any span)."""
    trace_id = trace_id_of(cause)
    if trace_id is None:
        return new_traceparent()
    return f"00-{trace_id}-{random_bits(64) or 1:016x}-01"
