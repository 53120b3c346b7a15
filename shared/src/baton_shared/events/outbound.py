"""Outbound commands (`wa.outbound`) and their results (`wa.outbound.results`)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from baton_shared.events.envelope import Event, Payload, or_unknown
from baton_shared.events.inbound import DeliveryStatus, PlatformError
from baton_shared.streams import names


class Author(StrEnum):
    """Who wrote an outbound message; `ai` messages (and those of an author a consumer does not
    know, read as `unknown`) are fenced by takeovers."""

    AI = "ai"
    OPERATOR = "operator"
    SYSTEM = "system"
    UNKNOWN = "unknown"


class OutboundKind(StrEnum):
    """What the sender is asked to send."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    TEMPLATE = "template"
    INTERACTIVE = "interactive"
    REACTION = "reaction"
    MARK_READ = "mark_read"
    TYPING = "typing"
    UNKNOWN = "unknown"


NOT_MESSAGES = frozenset({OutboundKind.MARK_READ, OutboundKind.TYPING})
"""Kinds that are calls about the customer's message, not messages: no wamid, no transcript
entry, no window or pair-rate limits."""


class OutboundMedia(Payload):
    """A media attachment by public link or uploaded media id.

    Attributes:
        link: HTTPS link WhatsApp downloads from.
        id: media id from a previous upload.
        caption: caption (images, videos, documents).
        filename: filename shown for documents.
        voice: for audio, send it as a voice note (OGG/OPUS; shown with a play button);
            false sends an audio file.
    """

    link: str | None = None
    id: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool = False


class OutboundCommand(Payload):
    """A message to send to a customer.

    Attributes:
        command_id: idempotency key; a repeated command id is never sent twice.
        phone_number_id: business number to send from.
        to: the customer's wa_id.
        author: ai, operator or system.
        kind: what to send.
        text: text body (text kind) or fallback description.
        preview_url: let WhatsApp render a link preview.
        media: the attachment for media kinds.
        template: the WhatsApp `template` object for templates.
        interactive: the WhatsApp `interactive` object for buttons and lists.
        reply_to: WhatsApp message id this message replies to (context), or reacts to.
        emoji: the reaction emoji (empty string removes a reaction).
        control_epoch: for AI messages, the control epoch the agent answered under.
        turn_id: the turn that produced it, for AI messages.
        operator: the operator who wrote it, for operator messages.
    """

    # Bounded as the sender's tables are: a longer id is refused where the command is read
    # (dead-lettered at once with the reason), not retried against a failing insert.
    command_id: str = Field(max_length=200)
    phone_number_id: str = Field(max_length=64)
    to: str = Field(max_length=64)
    author: Annotated[Author, or_unknown(Author)]
    kind: Annotated[OutboundKind, or_unknown(OutboundKind)]
    text: str | None = None
    preview_url: bool = False
    media: OutboundMedia | None = None
    template: dict[str, Any] | None = None
    interactive: dict[str, Any] | None = None
    reply_to: str | None = None
    emoji: str | None = None
    control_epoch: int | None = None
    turn_id: uuid.UUID | None = None
    operator: str | None = None


class MessageRequested(Event):
    """A service asked the sender to send a message."""

    stream: ClassVar[str] = names.WA_OUTBOUND
    event_type: Literal["outbound.message_requested"] = "outbound.message_requested"
    schema_version: Literal[1] = 1
    payload: OutboundCommand


class OutboundOutcome(Payload):
    """What became of an outbound command.

    Attributes:
        command_id: the command.
        phone_number_id: business number it was sent from.
        to: the customer.
        author: who wrote it.
        kind: what it was.
        text: its text, for transcripts.
        wa_message_id: WhatsApp's message id once sent.
        status: delivery status for status changes.
        reason: machine-readable reason for failures and suppressions (e.g. `window_closed`).
        error: WhatsApp's error, when WhatsApp refused it.
        details: extra facts (retries, limits) for operators and dashboards.
    """

    # Bounded as the sender's tables are: a longer id is refused where the command is read
    # (dead-lettered at once with the reason), not retried against a failing insert.
    command_id: str = Field(max_length=200)
    phone_number_id: str = Field(max_length=64)
    to: str = Field(max_length=64)
    author: Annotated[Author, or_unknown(Author)] = Author.UNKNOWN
    kind: Annotated[OutboundKind, or_unknown(OutboundKind)] = OutboundKind.UNKNOWN
    text: str | None = None
    wa_message_id: str | None = None
    status: Annotated[DeliveryStatus, or_unknown(DeliveryStatus)] | None = None
    reason: str | None = None
    error: PlatformError | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class MessageSent(Event):
    """WhatsApp accepted the message (status `sent` follows by webhook)."""

    stream: ClassVar[str] = names.WA_OUTBOUND_RESULTS
    event_type: Literal["outbound.message_sent"] = "outbound.message_sent"
    schema_version: Literal[1] = 1
    payload: OutboundOutcome


class MessageFailed(Event):
    """The message will not be delivered: refused by WhatsApp, invalid, or window closed."""

    stream: ClassVar[str] = names.WA_OUTBOUND_RESULTS
    event_type: Literal["outbound.message_failed"] = "outbound.message_failed"
    schema_version: Literal[1] = 1
    payload: OutboundOutcome


class MessageSuppressed(Event):
    """An AI message was not sent because a human holds the conversation (fencing)."""

    stream: ClassVar[str] = names.WA_OUTBOUND_RESULTS
    event_type: Literal["outbound.message_suppressed"] = "outbound.message_suppressed"
    schema_version: Literal[1] = 1
    payload: OutboundOutcome


class DeliveryStatusChanged(Event):
    """A sent message moved forward: delivered, read, or failed after sending."""

    stream: ClassVar[str] = names.WA_OUTBOUND_RESULTS
    event_type: Literal["outbound.status_changed"] = "outbound.status_changed"
    schema_version: Literal[1] = 1
    payload: OutboundOutcome
