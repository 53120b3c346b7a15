"""The event catalogue: every event type Baton publishes, and parsing of stream entries."""

from __future__ import annotations

from baton_shared.events.conversation import (
    ConversationAwaitingHuman,
    ConversationHandedBack,
    ConversationReopened,
    ConversationResolved,
    ConversationTakenOver,
    InterventionRequested,
    TurnCompleted,
    TurnReady,
)
from baton_shared.events.envelope import Event
from baton_shared.events.inbound import MessageReceived, PlatformErrorReceived, StatusReceived
from baton_shared.events.outbound import (
    DeliveryStatusChanged,
    MessageFailed,
    MessageRequested,
    MessageSent,
    MessageSuppressed,
)
from baton_shared.events.webhook import WebhookReceived

CATALOGUE: tuple[type[Event], ...] = (
    WebhookReceived,
    MessageReceived,
    StatusReceived,
    PlatformErrorReceived,
    TurnReady,
    TurnCompleted,
    ConversationTakenOver,
    ConversationHandedBack,
    InterventionRequested,
    ConversationAwaitingHuman,
    ConversationResolved,
    ConversationReopened,
    MessageRequested,
    MessageSent,
    MessageFailed,
    MessageSuppressed,
    DeliveryStatusChanged,
)


def _key(cls: type[Event]) -> tuple[str, int]:
    fields = cls.model_fields
    return str(fields["event_type"].default), int(fields["schema_version"].default)


BY_TYPE: dict[tuple[str, int], type[Event]] = {_key(cls): cls for cls in CATALOGUE}


class UnknownEventError(LookupError):
    """The entry's event type or version is not in this version's catalogue."""


def event_class(event_type: str, schema_version: int) -> type[Event]:
    """The model for an event type and version; raises UnknownEventError when unknown."""
    try:
        return BY_TYPE[(event_type, schema_version)]
    except KeyError:
        raise UnknownEventError(f"{event_type} v{schema_version}") from None


def parse_event(event_type: str, schema_version: int, body: str | bytes) -> Event:
    """Validate an envelope's JSON body into its typed model (pydantic ValidationError if bad)."""
    return event_class(event_type, schema_version).model_validate_json(body)
