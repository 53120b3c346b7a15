"""Validation of `POST /{version}/{phone_number_id}/messages` bodies, as the Cloud API does it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from baton_devtools.whatsapp.checks import (
    check_keys,
    optional_obj,
    optional_str,
    require_enum,
    require_list,
    require_obj,
    require_str,
    sub,
)
from baton_devtools.whatsapp.errors import GraphError, invalid_value, param_error
from baton_devtools.whatsapp.validate_interactive import validate_interactive
from baton_devtools.whatsapp.validate_types import TYPE_VALIDATORS

MESSAGE_TYPES = (*TYPE_VALIDATORS, "interactive")
_PHONE_PUNCTUATION = re.compile(r"[+\-() ]")
# A business-scoped user id: country code, a dot, digits (`US.13491208655302741918`).
_BSUID = re.compile(r"^[A-Z]{2}\.[0-9]{5,40}$")


@dataclass(frozen=True)
class SendRequest:
    """What the emulator needs to know about one accepted messages-endpoint call.

    Attributes:
        kind: "message" for a send, "read" for mark-as-read (with or without typing).
        type: message type, or "read" for mark-as-read.
        to: recipient as a WhatsApp id (digits), or None for mark-as-read.
        to_input: `to` exactly as the caller wrote it.
        message_id: the wamid being marked as read.
        callback_data: `biz_opaque_callback_data`, echoed in statuses.
    """

    kind: Literal["message", "read"]
    type: str
    to: str | None = None
    to_input: str | None = None
    message_id: str | None = None
    callback_data: str | None = None


def validate_send(body: Any, business_number: str) -> SendRequest:
    """Validate a messages-endpoint body, raising `GraphError` exactly where Graph would."""
    if not isinstance(body, dict):
        raise param_error("The parameter messaging_product is required.")
    require_enum(body, "messaging_product", "messaging_product", ["whatsapp"])
    if "status" in body:
        return _validate_read(body)
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type not in ("individual", "group"):
        raise param_error(
            f'Param recipient_type must be one of {{INDIVIDUAL, GROUP}} - got "{recipient_type}".'
        )
    to_input = _recipient(body)
    if recipient_type == "group":
        to = to_input
    elif body.get("to") is None and body.get("recipient") is not None:
        to = business_scoped_id(to_input)
    else:
        to = normalize_wa_id(to_input)
    if to == business_number:
        raise GraphError(131021, "Sender and recipient phone number is the same.")
    message_type = body.get("type", "text")
    if message_type not in MESSAGE_TYPES:
        shown = ", ".join(t.upper() for t in MESSAGE_TYPES)
        raise param_error(f'Param type must be one of {{{shown}}} - got "{message_type}".')
    content: Any = (
        require_list(body, "contacts", "contacts")
        if message_type == "contacts"
        else require_obj(body, message_type, message_type)
    )
    if message_type == "interactive":
        validate_interactive(content)
    else:
        TYPE_VALIDATORS[message_type](content, message_type)
    _validate_context(body, message_type)
    callback = optional_str(
        body, "biz_opaque_callback_data", "biz_opaque_callback_data", max_len=512
    )
    return SendRequest("message", message_type, to, to_input, callback_data=callback)


def normalize_wa_id(to: str) -> str:
    """Turn `+1 (650) 555-1234` into the WhatsApp id `16505551234`, or raise code 100."""
    digits = _PHONE_PUNCTUATION.sub("", to)
    if not digits.isdigit() or not 5 <= len(digits) <= 15:
        raise GraphError(100, f"Invalid WhatsApp ID or phone number: {to}")
    return digits


def business_scoped_id(value: str) -> str:
    """A business-scoped user id (`US.13491208655302741918`), or raise code 100."""
    if not _BSUID.match(value):
        raise GraphError(100, f"Invalid recipient: {value}")
    return value


def is_business_scoped(value: str) -> bool:
    """Whether `value` is a business-scoped user id rather than a WhatsApp id."""
    return bool(_BSUID.match(value))


def _recipient(body: dict[str, Any]) -> str:
    if body.get("to") is None and body.get("recipient") is not None:
        return require_str(body, "recipient", "recipient")
    return require_str(body, "to", "to")


def _validate_read(body: dict[str, Any]) -> SendRequest:
    require_enum(body, "status", "status", ["read"])
    message_id = require_str(body, "message_id", "message_id")
    typing = optional_obj(body, "typing_indicator", "typing_indicator")
    if typing is not None:
        check_keys(typing, ["type"], "typing_indicator")
        require_enum(typing, "type", sub("typing_indicator", "type"), ["text"])
    return SendRequest("read", "read", message_id=message_id)


def _validate_context(body: dict[str, Any], message_type: str) -> None:
    context = optional_obj(body, "context", "context")
    if context is None:
        return
    if message_type == "reaction":
        raise invalid_value("Reaction messages cannot be sent as a reply (context).")
    check_keys(context, ["message_id"], "context")
    require_str(context, "message_id", sub("context", "message_id"))
