"""What WhatsApp checks of a reaction's target after answering the send: a target that is
itself a reaction, or older than 30 days, fails the reaction with 131009 by status webhook
(reference 5.2). Targets the emulator never saw (a test may post customer messages to
ingress directly) are let through: the emulator cannot know them."""

from __future__ import annotations

import time
from typing import Any

from baton_devtools.whatsapp.errors import GraphError
from baton_devtools.whatsapp.state import WaState

MAX_AGE_SECONDS = 30 * 24 * 3600


def reaction_error(state: WaState, body: dict[str, Any]) -> GraphError | None:
    """The 131009 a reaction send earns, or None."""
    target = str(body["reaction"]["message_id"])
    inbound = state.inbound.get(target)
    ours = state.sent.get(target)
    if inbound is not None:
        kind, sent_at = inbound.type, inbound.timestamp
    elif ours is not None:
        kind, sent_at = ours.type, ours.received_at.timestamp()
    else:
        return None
    if kind == "reaction":
        return GraphError(
            131009, f"Message {target} is a reaction: a reaction cannot be reacted to."
        )
    if time.time() - sent_at > MAX_AGE_SECONDS:
        return GraphError(
            131009, f"Message {target} is older than 30 days and cannot be reacted to."
        )
    return None
