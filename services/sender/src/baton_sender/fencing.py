"""Fencing (invariant 4): an AI message is sent only while the AI still holds the conversation.

The operator-api writes the hash `control:<conversation_id>` = {mode, epoch, operator} *before*
a takeover returns 200. The sender reads it right before each AI-authored call: if the mode is
not `ai`, or the epoch is newer than the one the agent answered under, the message is
suppressed. A missing hash means no operator ever touched the conversation: the AI holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from baton_shared.events import Author
from baton_shared.streams import names
from baton_shared.streams.bus import Bus


@dataclass(frozen=True)
class Fence:
    """Why a message must not go out.

    Attributes:
        mode: the conversation's current mode.
        epoch: its current control epoch.
    """

    mode: str
    epoch: int


async def fence_for(
    bus: Bus, conversation_id: str, author: str, control_epoch: int | None
) -> Fence | None:
    """The fence stopping this message, or None when it may be sent."""
    if author != Author.AI:
        return None
    state = await bus.redis.hgetall(bus.key(names.control_state(conversation_id)))
    if not state:
        return None
    mode = str(state.get("mode") or "ai")
    try:
        epoch = int(state.get("epoch") or 0)
    except ValueError:
        epoch = 0
    if mode != "ai" or epoch > (control_epoch or 0):
        return Fence(mode=mode, epoch=epoch)
    return None
