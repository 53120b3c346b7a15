"""A whole webhook body → every message, status and error in it (every entry and change)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from baton_ingress.parsing.fields import ParseError, items, obj, text
from baton_ingress.parsing.messages import ChangeContext, parse_message
from baton_ingress.parsing.statuses import parse_errors, parse_status
from baton_shared.events import InboundMessage, PlatformErrors, StatusUpdate


@dataclass(frozen=True, slots=True)
class Rejection:
    """A part of a body that goes to the dead-letter stream instead of becoming an event.

    Attributes:
        reason: why, in words an operator can act on.
        where: its position, e.g. `entry[0].changes[1].messages[3]`.
    """

    reason: str
    where: str


@dataclass(slots=True)
class ParsedWebhook:
    """Everything one body carried, in body order.

    Attributes:
        messages: customer messages.
        statuses: delivery statuses of our messages.
        errors: app- or account-level errors, one group per change.
        rejections: parts that could not be parsed or are not allowed.
        ignored_fields: `changes[].field` values that ingress does not turn into events.
    """

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    errors: list[PlatformErrors] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    ignored_fields: list[str] = field(default_factory=list)


def parse_webhook(
    body: str, *, received_at: datetime, allowed_numbers: Collection[str] = ()
) -> ParsedWebhook:
    """Parse every `entry[]`/`changes[]`/`messages[]`/`statuses[]`/`errors[]` of `body`.

    Never raises: what cannot be parsed is reported in `rejections`, the rest is kept.
    """
    parsed = ParsedWebhook()
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # the request path lets depth ~1,000 through
        parsed.rejections.append(Rejection(f"body is not JSON: {exc}", "body"))
        return parsed
    if _UNSTORABLE_ESCAPE.search(body):
        document = _storable(document)
    entries = obj(document).get("entry")
    if not isinstance(entries, list):
        parsed.rejections.append(Rejection("body has no `entry` array", "body"))
        return parsed
    for e, entry in enumerate(entries):
        for c, change in enumerate(items(obj(entry).get("changes"))):
            where = f"entry[{e}].changes[{c}]"
            _parse_change(obj(change), where, parsed, received_at, allowed_numbers)
    return parsed


# JSON may escape what no UTF-8 text can hold: a lone surrogate (`\ud83d` without its pair, a
# client that cut an emoji in half) or NUL (`\u0000`, which PostgreSQL text and jsonb refuse).
# Decoded, either would fail every event of the body later (serialising it, storing it), so
# it becomes U+FFFD, the replacement character, as a decoder would write for a bad byte.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def _storable(node: Any) -> Any:
    """`node` with every lone surrogate and NUL in its strings (keys too) replaced."""
    if isinstance(node, str):
        return _UNSTORABLE.sub("\ufffd", node)
    if isinstance(node, list):
        return [_storable(item) for item in node]
    if isinstance(node, dict):
        return {_storable(key): _storable(value) for key, value in node.items()}
    return node


def _parse_change(
    change: dict[str, Any],
    where: str,
    parsed: ParsedWebhook,
    received_at: datetime,
    allowed_numbers: Collection[str],
) -> None:
    kind = text(change.get("field")) or "messages"
    if kind != "messages":
        parsed.ignored_fields.append(kind)
        return
    value = obj(change.get("value"))
    metadata = obj(value.get("metadata"))
    number = text(metadata.get("phone_number_id"))
    if number is None:
        parsed.rejections.append(Rejection("change without metadata.phone_number_id", where))
        return
    if allowed_numbers and number not in allowed_numbers:
        reason = f"phone_number_id {number} is not in WA_ALLOWED_PHONE_NUMBER_IDS"
        parsed.rejections.append(Rejection(reason, where))
        return
    context = ChangeContext(
        phone_number_id=number,
        display_phone_number=text(metadata.get("display_phone_number")),
        contacts=items(value.get("contacts")),
        received_at=received_at,
    )
    for i, message in enumerate(items(value.get("messages"))):
        try:
            parsed.messages.append(parse_message(obj(message), context))
        except (ParseError, ValueError) as exc:
            parsed.rejections.append(Rejection(str(exc), f"{where}.messages[{i}]"))
    for i, status in enumerate(items(value.get("statuses"))):
        try:
            parsed.statuses.append(parse_status(obj(status), context))
        except (ParseError, ValueError) as exc:
            parsed.rejections.append(Rejection(str(exc), f"{where}.statuses[{i}]"))
    errors = parse_errors(value.get("errors"))
    if errors:
        parsed.errors.append(PlatformErrors(phone_number_id=number, errors=errors))
