"""One `messages[]` item → `InboundMessage` (every type; unknown types kept raw)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from baton_ingress.parsing.fields import (
    MAX_ID,
    MAX_NUMBER,
    ParseError,
    bounded,
    clipped,
    obj,
    required,
    text,
    timestamp,
)
from baton_ingress.parsing.text import readable_text
from baton_shared.events import InboundMedia, InboundMessage, MessageType

MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
KNOWN_TYPES = frozenset(member.value for member in MessageType)


@dataclass(frozen=True, slots=True)
class ChangeContext:
    """What one `changes[].value` tells about every item in it.

    Attributes:
        phone_number_id: the business number (`metadata.phone_number_id`).
        display_phone_number: that number as displayed.
        contacts: the `contacts[]` profiles sent beside the messages.
        received_at: when ingress accepted the body (fallback timestamp).
    """

    phone_number_id: str
    display_phone_number: str | None
    contacts: list[Any]
    received_at: datetime


def _contact_for(context: ChangeContext, wa_id: str | None, user_id: str | None) -> dict[str, Any]:
    """The `contacts[]` profile of the sender; the only one when ids do not say."""
    profiles = [obj(c) for c in context.contacts]
    for profile in profiles:
        if (wa_id and text(profile.get("wa_id")) == wa_id) or (
            user_id and text(profile.get("user_id")) == user_id
        ):
            return profile
    return profiles[0] if len(profiles) == 1 else {}


def _media(kind: str, body: dict[str, Any]) -> InboundMedia | None:
    media_id = bounded(text(body.get("id")), MAX_ID, "media id")
    if kind not in MEDIA_TYPES or media_id is None:
        return None
    return InboundMedia(
        id=media_id,
        mime_type=clipped(text(body.get("mime_type"))),
        sha256=text(body.get("sha256")),
        caption=text(body.get("caption")),
        filename=clipped(text(body.get("filename"))),
        voice=body.get("voice") is True,
    )


def _context_message_id(message: dict[str, Any], kind: str) -> str | None:
    replied = text(obj(message.get("context")).get("id"))
    if replied is None and kind == "reaction":
        return text(obj(message.get("reaction")).get("message_id"))
    return replied


def parse_message(message: dict[str, Any], context: ChangeContext) -> InboundMessage:
    """Type one message; raises ParseError when it has no id or no customer identity."""
    message_id = required(message, "id", "message")
    kind = text(message.get("type")) or "unknown"
    if kind == "voice":  # some producers name voice notes as their own type
        message = {
            **message,
            "type": "audio",
            "audio": {**obj(message.get("voice")), "voice": True},
        }
        kind = "audio"
    wa_id = text(message.get("from"))
    user_id = text(message.get("from_user_id"))
    contact = _contact_for(context, wa_id, user_id)
    wa_id = wa_id or text(contact.get("wa_id"))
    user_id = user_id or text(contact.get("user_id"))
    if wa_id is None and user_id is None:
        raise ParseError(f"message {message_id} without `from` or `from_user_id`")
    bounded(wa_id, MAX_NUMBER, f"message {message_id}: the sender's wa_id")
    bounded(user_id, MAX_NUMBER, f"message {message_id}: the sender's user_id")
    return InboundMessage(
        message_id=message_id,
        phone_number_id=context.phone_number_id,
        display_phone_number=context.display_phone_number,
        wa_id=wa_id,
        user_id=user_id,
        customer_name=clipped(text(obj(contact.get("profile")).get("name"))),
        timestamp=timestamp(message.get("timestamp"), context.received_at),
        type=MessageType(kind) if kind in KNOWN_TYPES else MessageType.UNKNOWN,
        text=readable_text(message, kind),
        media=_media(kind, obj(message.get(kind))),
        context_message_id=_context_message_id(message, kind),
        raw=message,
    )
