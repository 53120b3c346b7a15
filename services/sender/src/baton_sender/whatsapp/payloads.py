"""Request bodies of `POST /{version}/{phone_number_id}/messages`, built from commands."""

from __future__ import annotations

from typing import Any

from baton_sender.whatsapp.errors import InvalidMessageError
from baton_sender.whatsapp.interactive import check_interactive
from baton_shared import whatsapp_limits as limits
from baton_shared.events import NOT_MESSAGES, OutboundCommand, OutboundKind

# Messages allowed outside the customer-service window: templates, plus the calls that are
# not messages at all (marking the customer's message read, the typing indicator).
WINDOW_FREE_KINDS = NOT_MESSAGES | {OutboundKind.TEMPLATE}


def recipient(to: str) -> str:
    """`to` with a leading `+` when it is a bare phone number (Meta's advice)."""
    return f"+{to}" if to.isdigit() else to


def addressed(to: str) -> dict[str, str]:
    """Who the message goes to: `to` for a phone number (a WhatsApp id), `recipient` for a
    business-scoped user id (`US.1349...`, a customer who arrived by username, without a
    phone number: the reference, section 2.2)."""
    if to.lstrip("+").isdigit():
        return {"to": recipient(to)}
    return {"recipient": to}


def build_body(command: OutboundCommand, callback_data: str | None = None) -> dict[str, Any]:
    """The JSON body for `command`; raises `InvalidMessageError` when it breaks a limit."""
    kind = command.kind
    if kind in NOT_MESSAGES:
        if not command.reply_to:
            raise InvalidMessageError(f"{kind} needs reply_to (the customer's message id)")
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": command.reply_to,
        }
        if kind is OutboundKind.TYPING:
            body["typing_indicator"] = {"type": "text"}
        return body
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        **addressed(command.to),
        "type": kind.value,
        kind.value: _content(command),
    }
    if command.reply_to and kind is not OutboundKind.REACTION:
        body["context"] = {"message_id": command.reply_to}
    if callback_data is not None:
        body["biz_opaque_callback_data"] = callback_data
    return body


def _content(command: OutboundCommand) -> dict[str, Any]:
    kind = command.kind
    if kind is OutboundKind.TEXT:
        return _text(command)
    if kind.value in limits.MEDIA_KINDS:
        return _media(command)
    if kind is OutboundKind.TEMPLATE:
        return _template(command)
    if kind is OutboundKind.INTERACTIVE:
        if not command.interactive:
            raise InvalidMessageError("interactive messages need the interactive object")
        check_interactive(command.interactive)
        return dict(command.interactive)
    if kind is OutboundKind.REACTION:
        if not command.reply_to or command.emoji is None:
            raise InvalidMessageError("reactions need reply_to and emoji ('' removes one)")
        return {"message_id": command.reply_to, "emoji": command.emoji}
    raise InvalidMessageError(f"unsupported outbound kind {kind.value!r}")


def _text(command: OutboundCommand) -> dict[str, Any]:
    if not command.text or not command.text.strip():
        raise InvalidMessageError("text messages need a non-empty text")
    if len(command.text) > limits.TEXT_BODY:
        raise InvalidMessageError(
            f"text is {len(command.text)} characters; the limit is {limits.TEXT_BODY}"
        )
    return {"preview_url": command.preview_url, "body": command.text}


def _media(command: OutboundCommand) -> dict[str, Any]:
    media = command.media
    kind = command.kind.value
    if media is None or bool(media.link) == bool(media.id):
        raise InvalidMessageError(f"{kind} messages need exactly one of media.link or media.id")
    content: dict[str, Any] = {"link": media.link} if media.link else {"id": media.id}
    if media.caption is not None:
        if kind not in limits.CAPTIONED:
            raise InvalidMessageError(f"{kind} messages cannot have a caption")
        if len(media.caption) > limits.CAPTION:
            raise InvalidMessageError(
                f"caption is {len(media.caption)} characters; the limit is {limits.CAPTION}"
            )
        content["caption"] = media.caption
    if media.filename is not None:
        if kind != "document":
            raise InvalidMessageError("only documents have a filename")
        content["filename"] = media.filename
    if media.voice:
        if kind != "audio":
            raise InvalidMessageError("only audio can be sent as a voice note")
        content["voice"] = True
    return content


def _template(command: OutboundCommand) -> dict[str, Any]:
    template = command.template or {}
    language = template.get("language")
    if not isinstance(template.get("name"), str) or not template["name"]:
        raise InvalidMessageError("templates need a name")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str):
        raise InvalidMessageError("templates need language.code")
    components = template.get("components")
    if components is not None and not isinstance(components, list):
        raise InvalidMessageError("template components must be a list")
    return dict(template)
