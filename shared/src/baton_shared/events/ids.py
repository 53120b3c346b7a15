"""Stable identifiers derived from WhatsApp identities."""

from __future__ import annotations

import uuid

_CONVERSATION_NS = uuid.UUID("6f1c2a8e-2d1b-4c55-9a43-0b7a7f3d5c10")
_COMMAND_NS = uuid.UUID("0d9e6c1a-7b44-4f1e-8a52-3c2f9e8d1a77")


def conversation_id_for(phone_number_id: str, customer_id: str) -> str:
    """The conversation id of one customer (wa_id or user id) on one business number."""
    return str(uuid.uuid5(_CONVERSATION_NS, f"{phone_number_id}:{customer_id}"))


def command_id_for(origin: str, position: int) -> str:
    """A deterministic outbound command id: the same origin and position give the same id."""
    return str(uuid.uuid5(_COMMAND_NS, f"{origin}:{position}"))
