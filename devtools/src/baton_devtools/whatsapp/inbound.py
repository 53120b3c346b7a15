"""Customer messages: the `POST /_emulator/inbound` request and the webhook items it becomes."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from baton_devtools.whatsapp.media import MediaStore
from baton_devtools.whatsapp.payloads import new_wamid

InboundType = Literal[
    "text", "image", "audio", "video", "document", "sticker", "location", "reaction",
    "interactive", "button",
]  # fmt: skip
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
DEFAULT_MIME: dict[str, str] = {
    "image": "image/jpeg",
    "audio": "audio/ogg; codecs=opus",
    "video": "video/mp4",
    "document": "application/pdf",
    "sticker": "image/webp",
}


class InboundRequest(BaseModel):
    """What a test says a customer sends; every field but `from` has a default.

    Attributes:
        from_: the customer's WhatsApp id (JSON key `from`).
        text: text body; caption for media; title for button replies; emoji for reactions
            (None on a reaction = the customer removed it).
        phone_number_id: the business number that receives it.
        name: the customer's profile name.
        type: WhatsApp message type.
        message_id: wamid to use (to test duplicates); a fresh one by default.
        reply_to: wamid of our message this replies to, reacts to or whose button was tapped.
        reply_id: id of the tapped button / list row (default derived from `text`).
        interactive_type: `button_reply` or `list_reply` for type interactive.
        mime_type, filename, voice: media details.
        latitude, longitude: location.
        content: replaces the generated type object verbatim.
        timestamp: Unix seconds (default now).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", min_length=1)
    text: str | None = None
    phone_number_id: str = "100000000000001"
    name: str = "Test Customer"
    type: InboundType = "text"
    message_id: str | None = None
    reply_to: str | None = None
    reply_id: str | None = None
    interactive_type: Literal["button_reply", "list_reply"] = "button_reply"
    mime_type: str | None = None
    filename: str | None = None
    voice: bool = True
    latitude: float = 51.50135
    longitude: float = -0.14189
    content: dict[str, Any] | None = None
    timestamp: int | None = None

    @field_validator("from_")
    @classmethod
    def _digits(cls, value: str) -> str:
        digits = value.lstrip("+")
        if not digits.isdigit():
            raise ValueError("`from` must be a WhatsApp id (digits)")
        return digits

    @model_validator(mode="after")
    def _reaction_target(self) -> Self:
        if self.type == "reaction" and self.content is None and not self.reply_to:
            raise ValueError("a reaction needs `reply_to` (the wamid reacted to)")
        return self


def build_inbound(
    request: InboundRequest, media: MediaStore, business_number: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the (`contacts[]` item, `messages[]` item) for a customer message."""
    contact = {"profile": {"name": request.name}, "wa_id": request.from_}
    message: dict[str, Any] = {
        "from": request.from_,
        "id": request.message_id or new_wamid(),
        "timestamp": str(request.timestamp or int(time.time())),
        "type": request.type,
    }
    if request.reply_to and request.type != "reaction":
        message["context"] = {"from": business_number, "id": request.reply_to}
    message[request.type] = (
        request.content if request.content is not None else _content(request, media)
    )
    return contact, message


def _content(request: InboundRequest, media: MediaStore) -> dict[str, Any]:
    text = request.text
    if request.type in MEDIA_TYPES:
        return _media_content(request, media)
    if request.type == "location":
        return {"latitude": request.latitude, "longitude": request.longitude}
    if request.type == "reaction":
        reaction: dict[str, Any] = {"message_id": request.reply_to}
        if text is not None:
            reaction["emoji"] = text
        return reaction
    title = text or "OK"
    reply_id = request.reply_id or (re.sub(r"\W+", "_", title.lower()).strip("_") or "reply")
    if request.type == "interactive":
        kind = request.interactive_type
        return {"type": kind, kind: {"id": reply_id, "title": title}}
    if request.type == "button":
        return {"payload": reply_id, "text": title}
    return {"body": text or ""}


def _media_content(request: InboundRequest, media: MediaStore) -> dict[str, Any]:
    mime_type = request.mime_type or DEFAULT_MIME[request.type]
    data = f"emulated {request.type} from {request.from_}".encode()
    item = media.add(data, mime_type, request.phone_number_id)
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    content: dict[str, Any] = {"mime_type": mime_type, "sha256": sha, "id": item.id}
    if request.text is not None and request.type in ("image", "video", "document"):
        content["caption"] = request.text
    if request.type == "document":
        content["filename"] = request.filename or "document.pdf"
    if request.type == "audio":
        content["voice"] = request.voice
    if request.type == "sticker":
        content["animated"] = False
    return content
