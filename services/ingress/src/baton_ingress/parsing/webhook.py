"""A whole webhook body → every message, status and error in it (every entry and change)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from baton_ingress.parsing.fields import MAX_NUMBER, ParseError, items, obj, text
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
        for c, change in enumerate(_array(obj(entry), "changes", f"entry[{e}]", parsed)):
            where = f"entry[{e}].changes[{c}]"
            _parse_change(obj(change), where, parsed, received_at, allowed_numbers)
    return parsed


# JSON may escape what no UTF-8 text can hold: a lone surrogate (`\ud83d` without its pair, a
# client that cut an emoji in half) or NUL (`\u0000`, which PostgreSQL text and jsonb refuse).
# Decoded, either would fail every event of the body later (serialising it, storing it), so
# it becomes U+FFFD, the replacement character, as a decoder would write for a bad byte.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def _storable(document: Any) -> Any:
    """`document` with every lone surrogate and NUL in its strings (keys too) replaced, in
    place and without recursion: the decoder accepts nesting deeper than Python's stack
    (a walk of two frames per level raised RecursionError on an unknown field 700 deep)."""
    if isinstance(document, str):
        return _UNSTORABLE.sub("\ufffd", document)
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = _UNSTORABLE.sub("\ufffd", item)
                elif isinstance(item, list | dict):
                    stack.append(item)
        elif isinstance(node, dict):
            pairs = list(node.items())
            node.clear()  # rebuilt in the same order, under the cleaned keys
            for key, value in pairs:
                if isinstance(value, str):
                    value = _UNSTORABLE.sub("\ufffd", value)
                elif isinstance(value, list | dict):
                    stack.append(value)
                node[_UNSTORABLE.sub("\ufffd", key)] = value
    return document


def _array(container: dict[str, Any], key: str, where: str, parsed: ParsedWebhook) -> list[Any]:
    """`container[key]` when it is an array; a rejection when it is something else (an
    object where WhatsApp sends an array would otherwise vanish without a trace)."""
    value = container.get(key)
    if value is None or isinstance(value, list):
        return value or []
    parsed.rejections.append(Rejection(f"`{key}` is not an array", where))
    return []


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
    if len(number) > MAX_NUMBER:
        reason = f"metadata.phone_number_id is {len(number)} characters long, over {MAX_NUMBER}"
        parsed.rejections.append(Rejection(reason, where))
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
    for i, message in enumerate(_array(value, "messages", where, parsed)):
        try:
            parsed.messages.append(parse_message(obj(message), context))
        except (ParseError, ValueError) as exc:
            parsed.rejections.append(Rejection(str(exc), f"{where}.messages[{i}]"))
    for i, status in enumerate(_array(value, "statuses", where, parsed)):
        try:
            parsed.statuses.append(parse_status(obj(status), context))
        except (ParseError, ValueError) as exc:
            parsed.rejections.append(Rejection(str(exc), f"{where}.statuses[{i}]"))
    errors = parse_errors(_array(value, "errors", where, parsed))
    if errors:
        parsed.errors.append(PlatformErrors(phone_number_id=number, errors=errors))
