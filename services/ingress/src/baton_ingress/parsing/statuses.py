"""`statuses[]` items → `StatusUpdate`, and WhatsApp error objects → `PlatformError`."""

from __future__ import annotations

from typing import Any

from baton_ingress.parsing.fields import (
    MAX_NUMBER,
    bounded,
    items,
    obj,
    required,
    text,
    timestamp,
)
from baton_ingress.parsing.messages import ChangeContext
from baton_shared.events import DeliveryStatus, PlatformError, StatusUpdate

KNOWN_STATUSES = frozenset(member.value for member in DeliveryStatus)


def parse_error(error: object) -> PlatformError:
    """One WhatsApp error object; a missing or odd code becomes 0 rather than a loss."""
    error = obj(error)
    try:
        code = int(str(error.get("code")))
    except ValueError:
        code = 0
    return PlatformError(
        code=code,
        title=text(error.get("title")),
        message=text(error.get("message")),
        details=text(obj(error.get("error_data")).get("details")),
    )


def parse_errors(errors: object) -> list[PlatformError]:
    """Every error of an `errors[]` array."""
    return [parse_error(e) for e in items(errors)]


def parse_status(status: dict[str, Any], context: ChangeContext) -> StatusUpdate:
    """Type one status; raises ParseError when it has no message id or no status."""
    value = required(status, "status", "status", limit=MAX_NUMBER)
    return StatusUpdate(
        message_id=required(status, "id", "status"),
        phone_number_id=context.phone_number_id,
        recipient_id=bounded(text(status.get("recipient_id")), MAX_NUMBER, "status `recipient_id`"),
        status=DeliveryStatus(value) if value in KNOWN_STATUSES else DeliveryStatus.UNKNOWN,
        timestamp=timestamp(status.get("timestamp"), context.received_at),
        errors=parse_errors(status.get("errors")),
        raw=status,
    )


def status_customer(status: StatusUpdate) -> str | None:
    """The customer a status concerns: phone number, else business-scoped user id."""
    return status.recipient_id or text(status.raw.get("recipient_user_id"))
