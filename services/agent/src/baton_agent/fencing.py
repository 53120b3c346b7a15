"""The operator-api's fencing hash, read at turn time.

The operator-api writes `control:<conversation_id>` = {mode, epoch, operator} before its HTTP
answer, while its `conv.control` event reaches the agent later. A customer turn arriving in
between (right after a handback, say) must follow the hash, not the agent's older copy.
"""

from __future__ import annotations

from baton_agent.db.repo import Control
from baton_shared.events import Mode
from baton_shared.streams import names
from baton_shared.streams.bus import Bus


def parse_hash(fields: dict[str, str]) -> Control | None:
    """The hash as a `Control`; None when absent or unreadable (the agent's copy then wins).

    `resolved` reads as `ai` (nobody holds it) and an unknown mode as `unknown`, which keeps
    the AI silent.
    """
    try:
        epoch = int(fields["epoch"])
    except (KeyError, ValueError):
        return None
    raw = fields.get("mode", "")
    mode = Mode(raw) if raw in Mode._value2member_map_ else Mode.UNKNOWN
    return Control(Mode.AI if mode is Mode.RESOLVED else mode, epoch)


async def read_fence(bus: Bus, conversation_id: str) -> Control | None:
    """The conversation's fencing hash, or None when there is none."""
    fields: dict[str, str] = await bus.redis.hgetall(  # type: ignore[assignment]
        bus.key(names.control_state(conversation_id))
    )
    return parse_hash(fields) if fields else None


def newer(own: Control, fence: Control | None) -> Control:
    """The newer of the two by epoch; a missing hash, or the same state, keeps the agent's own.

    At the same epoch with another mode the hash wins: the operator-api decides who holds a
    conversation, and only the agent's own hand-off (pending_human, under the epoch after its
    turn's) can share an epoch with one of its decisions, when an operator acted meanwhile
    (a resolve from `ai` gets that same epoch). The operator-api then refused the hand-off as
    stale, and its state stands."""
    if fence is None or fence.epoch < own.epoch:
        return own
    if fence.epoch == own.epoch and fence.mode in (own.mode, Mode.UNKNOWN):
        return own  # the same state, or a hash without a mode we know: no decision
    return fence
