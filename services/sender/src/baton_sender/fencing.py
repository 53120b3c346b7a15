"""Fencing (invariant 4): an AI message is sent only while the AI still holds the conversation.

The operator-api writes the hash `control:<conversation_id>` = {mode, epoch, operator} *before*
a takeover returns 200. The sender reads it right before each AI-authored call: if the mode is
not `ai`, or the epoch is newer than the one the agent answered under, the message is
suppressed. A missing hash means no operator ever touched the conversation: the AI holds it,
unless the message was produced under an epoch above 0, which only the operator-api gives
out: then the hash was lost (Redis flushed or restored without it), and the message is held
(`Fence.lost`, re-queued) until the operator-api's resync writes the hash again, instead of
reaching a customer a person may hold.

A turn that hands off (the model asked for a person, failed, or used up its answers) tells the
customer that a person is coming, as a `system` message with the epoch of the turn. The
handoff itself moves the conversation to `pending_human` at the next epoch, so that notice
passes that one step; anything beyond it (a takeover, a handback, a resolve after the turn
read its mode) fences it like an AI answer. A `system` message without an epoch is not
fenced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from baton_sender.coalesce import Coalescer
from baton_sender.context import SenderContext
from baton_shared.events import Author
from baton_shared.streams import names
from baton_shared.streams.bus import Bus


@dataclass(frozen=True)
class Fence:
    """Why a message must not go out.

    Attributes:
        mode: the conversation's current mode.
        epoch: its current control epoch.
        lost: the control state is missing though the conversation has one: wait for it.
    """

    mode: str
    epoch: int
    lost: bool = False


LOST = Fence(mode="unknown", epoch=-1, lost=True)


async def fence_of(ctx: SenderContext, row: Any) -> Fence | None:
    """The fence stopping a claimed message row, or None when it may be sent; the reads of
    concurrent sends share one pipelined round trip, each still made after its own `calling`
    commit."""
    if not fenced(row.author, row.control_epoch):
        return None
    batches = ctx.batches.get("fence")
    if batches is None:
        batches = ctx.batches["fence"] = Coalescer(
            partial(_read_many, ctx.bus), partial(_read_one, ctx.bus)
        )
    return decide(await batches.submit(str(row.conversation_id)), row.author, row.control_epoch)


def fenced(author: str, control_epoch: int | None) -> bool:
    """Whether a message by `author` is checked against the control state at all: AI
    messages, the handoff notices (`system` with the epoch of their turn), and messages of an
    author this version does not know (a newer producer's), fenced as the AI's: better held
    back (a visible `suppressed`) than talking over a person who took over."""
    if author == Author.SYSTEM:
        return control_epoch is not None
    return author in (Author.AI, Author.UNKNOWN)


def decide(state: dict[str, Any], author: str, control_epoch: int | None) -> Fence | None:
    """The fence a control state (`control:<conversation_id>` hash) puts on a message of
    `author` produced under `control_epoch` (see the module's docstring)."""
    if not state:
        return LOST if (control_epoch or 0) > 0 else None
    mode = str(state.get("mode") or "ai")
    try:
        epoch = int(state.get("epoch") or 0)
    except ValueError:
        epoch = 0
    produced_under = control_epoch or 0
    if author == Author.SYSTEM:
        handed_off = epoch == produced_under + 1 and mode == "pending_human"
        return None if epoch <= produced_under or handed_off else Fence(mode=mode, epoch=epoch)
    if mode != "ai" or epoch > produced_under:
        return Fence(mode=mode, epoch=epoch)
    return None


async def _read_one(bus: Bus, conversation_id: str) -> dict[str, Any]:
    state: dict[str, Any] = dict(
        await bus.redis.hgetall(bus.key(names.control_state(conversation_id)))  # type: ignore[arg-type]
    )
    return state


async def _read_many(bus: Bus, conversation_ids: Sequence[str]) -> list[dict[str, Any]]:
    async with bus.redis.pipeline(transaction=False) as pipe:
        for conversation_id in conversation_ids:
            pipe.hgetall(bus.key(names.control_state(conversation_id)))
        return [dict(state) for state in await pipe.execute()]
