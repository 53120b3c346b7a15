"""Events on `wa.outbound.results`, built from a message row and the command that asked for it."""

from __future__ import annotations

import json
from typing import Any

from baton_shared.events import (
    DeliveryStatus,
    Event,
    OutboundOutcome,
    PlatformError,
    new_traceparent,
    trace_id_of,
)

PRODUCER = "sender"


def outcome(
    row: Any,
    *,
    wa_message_id: str | None = None,
    status: DeliveryStatus | None = None,
    reason: str | None = None,
    error: PlatformError | None = None,
    details: dict[str, Any] | None = None,
) -> OutboundOutcome:
    """The outcome payload for one message row."""
    facts: dict[str, Any] = {"attempts": row.attempts}
    if row.parts > 1:
        facts |= {"part": row.part, "parts": row.parts}
    return OutboundOutcome(
        command_id=row.command_id,
        phone_number_id=row.phone_number_id,
        to=row.recipient,
        author=row.author,
        kind=row.kind,
        text=row.text,
        wa_message_id=wa_message_id or row.wa_message_id,
        status=status,
        reason=reason,
        error=error,
        details=facts | (details or {}),
    )


def result_event(event_cls: type[Event], row: Any, payload: OutboundOutcome) -> Event:
    """A result event continuing the command's correlation and trace (as `Event.create` with
    the command as cause).

    Only the envelope fields a result inherits are read back from the stored command event:
    it was validated when recorded, and validating all of it again for every result cost more
    than building the result."""
    cause = json.loads(row.request_event)
    fields: dict[str, Any] = {
        "payload": payload,
        "producer": PRODUCER,
        "correlation_id": cause["correlation_id"],
        "causation_id": cause["event_id"],
        "conversation_id": row.conversation_id,
        "traceparent": new_traceparent(trace_id_of(cause["traceparent"])),
    }
    return event_cls(**fields)
