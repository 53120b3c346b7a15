"""Events on `wa.outbound.results`, built from a message row and the command that asked for it."""

from __future__ import annotations

from typing import Any

from baton_shared.events import (
    DeliveryStatus,
    Event,
    MessageRequested,
    OutboundOutcome,
    PlatformError,
)

PRODUCER = "sender"


def request_of(row: Any) -> MessageRequested:
    """The command event a message row came from (the cause of every result event)."""
    return MessageRequested.model_validate_json(row.request_event)


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
    """A result event continuing the command's correlation and trace."""
    return event_cls.create(
        payload, producer=PRODUCER, cause=request_of(row), conversation_id=row.conversation_id
    )
