"""Events parsed from webhooks: customer messages (`wa.inbound`) and statuses (`wa.statuses`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from baton_shared.events.envelope import Event, Payload, or_unknown
from baton_shared.streams import names


class MessageType(StrEnum):
    """WhatsApp inbound message types; `unknown` for types newer than this code."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    INTERACTIVE = "interactive"
    BUTTON = "button"
    REACTION = "reaction"
    ORDER = "order"
    SYSTEM = "system"
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"


class InboundMedia(Payload):
    """Metadata of a media attachment (the bytes are fetched separately by id).

    Attributes:
        id: WhatsApp media id.
        mime_type: MIME type as reported by WhatsApp.
        sha256: checksum reported by WhatsApp.
        caption: caption typed by the customer.
        filename: original filename (documents).
        voice: True for a recorded voice note.
    """

    id: str
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool = False


class InboundMessage(Payload):
    """One customer message.

    Attributes:
        message_id: WhatsApp message id (`wamid...`), unique per message.
        phone_number_id: the business number that received it.
        display_phone_number: that number as displayed, when WhatsApp sends it.
        wa_id: the customer's WhatsApp id (phone number); None for business-scoped users.
        user_id: the customer's business-scoped user id, when WhatsApp sends one.
        customer_name: profile name, when WhatsApp sends it.
        timestamp: when WhatsApp says the customer sent it.
        type: message type (`unknown` for types this version does not know).
        text: the readable text: body, caption, button title, reaction emoji...
        media: attachment metadata for media types.
        context_message_id: the message this one replies to, if any.
        raw: the WhatsApp message object as received, for types we do not model.
    """

    message_id: str
    phone_number_id: str
    display_phone_number: str | None = None
    wa_id: str | None = None
    user_id: str | None = None
    customer_name: str | None = None
    timestamp: datetime
    type: Annotated[MessageType, or_unknown(MessageType)]
    text: str | None = None
    media: InboundMedia | None = None
    context_message_id: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def customer_id(self) -> str:
        """The customer's identity: wa_id when known, else the business-scoped user id."""
        return self.wa_id or self.user_id or "unknown"


class MessageReceived(Event):
    """A customer message arrived (de-duplicated by WhatsApp message id)."""

    stream: ClassVar[str] = names.WA_INBOUND
    event_type: Literal["inbound.message_received"] = "inbound.message_received"
    schema_version: Literal[1] = 1
    payload: InboundMessage


class DeliveryStatus(StrEnum):
    """WhatsApp delivery statuses, in the order they only move forward (failed is final)."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"  # a voice message we sent was first played (after read)
    FAILED = "failed"
    UNKNOWN = "unknown"


class PlatformError(Payload):
    """An error object as WhatsApp reports it.

    Attributes:
        code: WhatsApp error code.
        title: short title.
        message: message text, when present.
        details: `error_data.details`, when present.
    """

    code: int
    title: str | None = None
    message: str | None = None
    details: str | None = None


class StatusUpdate(Payload):
    """A delivery status of a message the business sent.

    Attributes:
        message_id: WhatsApp id of the outbound message.
        phone_number_id: the business number that sent it.
        recipient_id: the customer it was sent to.
        status: the new status (`unknown` for statuses this version does not know).
        timestamp: when WhatsApp says it happened.
        errors: errors WhatsApp attached (failed statuses).
        raw: the status object as received.
    """

    message_id: str
    phone_number_id: str
    recipient_id: str | None = None
    status: Annotated[DeliveryStatus, or_unknown(DeliveryStatus)]
    timestamp: datetime
    errors: list[PlatformError] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict)


class StatusReceived(Event):
    """WhatsApp reported a delivery status (de-duplicated by message id and status)."""

    stream: ClassVar[str] = names.WA_STATUSES
    event_type: Literal["inbound.status_received"] = "inbound.status_received"
    schema_version: Literal[1] = 1
    payload: StatusUpdate


class PlatformErrors(Payload):
    """Errors WhatsApp reported outside any message or status.

    Attributes:
        phone_number_id: the business number the errors concern.
        errors: the errors.
    """

    phone_number_id: str
    errors: list[PlatformError]


class PlatformErrorReceived(Event):
    """WhatsApp reported an app- or account-level error in a webhook."""

    stream: ClassVar[str] = names.WA_STATUSES
    event_type: Literal["inbound.platform_error_received"] = "inbound.platform_error_received"
    schema_version: Literal[1] = 1
    payload: PlatformErrors
