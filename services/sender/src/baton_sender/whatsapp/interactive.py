"""Checks of interactive messages against WhatsApp's rules (the reference, section 5.2, and
the emulator's `validate_interactive`): reply buttons and lists in depth, other kinds by
their common parts (body, footer, header, action)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from baton_sender.whatsapp.errors import InvalidMessageError
from baton_shared import whatsapp_limits as limits

# The kinds Graph knows; only buttons and lists are checked beyond their common parts.
KINDS = (
    "button", "list", "cta_url", "flow", "product", "product_list", "catalog_message",
    "location_request_message",
)  # fmt: skip
NEEDS_BODY = frozenset({"button", "list", "cta_url"})
# What a media header may carry beside its `id` or `link`.
HEADER_MEDIA: dict[str, tuple[str, ...]] = {
    "image": ("caption",),
    "video": ("caption",),
    "document": ("caption", "filename"),
}
FILENAME = 240  # the emulator's limit; the reference gives none


def _text(obj: Any, key: str, limit: int, where: str, *, required: bool = False) -> None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        if required:
            raise InvalidMessageError(f"{where}.{key} is required")
        return
    if not isinstance(value, str) or not value:
        raise InvalidMessageError(f"{where}.{key} must be a non-empty string")
    if len(value) > limit:
        raise InvalidMessageError(f"{where}.{key} is {len(value)} characters; the limit is {limit}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        raise InvalidMessageError(f"{where} is required")
    if not isinstance(value, dict):
        raise InvalidMessageError(f"{where} must be an object")
    return value


def _optional(value: Any, where: str) -> dict[str, Any] | None:
    return None if value is None else _object(value, where)


def _keys(obj: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    # WhatsApp refuses keys it does not know ("Unexpected key"), a typo included.
    known = list(allowed)
    for key in obj:
        if key not in known:
            raise InvalidMessageError(f"{where} has unknown key {key!r} (allowed: {known})")


def _unique(value: str, seen: set[str], where: str) -> None:
    if value in seen:
        raise InvalidMessageError(f"{where} {value!r} is used twice; it must be unique")
    seen.add(value)


def check_interactive(interactive: dict[str, Any]) -> None:
    """Raise `InvalidMessageError` when the message breaks WhatsApp's rules for its kind."""
    _keys(interactive, ("type", "header", "body", "footer", "action"), "interactive")
    kind = interactive.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidMessageError("interactive.type is required")
    if kind not in KINDS:
        raise InvalidMessageError(f"interactive.type {kind!r} is not one of {list(KINDS)}")
    if interactive.get("body") is not None or kind in NEEDS_BODY:
        body = _object(interactive.get("body"), "interactive.body")
        _keys(body, ("text",), "interactive.body")
        body_limit = limits.LIST_BODY if kind == "list" else limits.INTERACTIVE_BODY
        _text(body, "text", body_limit, "interactive.body", required=True)
    footer = _optional(interactive.get("footer"), "interactive.footer")
    if footer is not None:
        _keys(footer, ("text",), "interactive.footer")
        _text(footer, "text", limits.FOOTER, "interactive.footer", required=True)
    _check_header(interactive.get("header"), kind)
    action = _object(interactive.get("action"), "interactive.action")
    if kind == "button":
        _check_buttons(action)
    elif kind == "list":
        _keys(action, ("button", "sections"), "interactive.action")
        _text(action, "button", limits.LIST_BUTTON, "interactive.action", required=True)
        _check_sections(action)


def _check_header(value: Any, kind: str) -> None:
    header = _optional(value, "interactive.header")
    if header is None:
        return
    where = "interactive.header"
    allowed = ["text"] if kind == "list" else ["text", *HEADER_MEDIA]
    header_type = header.get("type")
    if header_type is None:
        raise InvalidMessageError(f"{where}.type is required")
    if header_type not in allowed:
        raise InvalidMessageError(f"{where}.type {header_type!r} is not one of {allowed}")
    _keys(header, ("type", header_type), where)
    if header_type == "text":
        _text(header, "text", limits.HEADER_TEXT, where, required=True)
        return
    media_where = f"{where}.{header_type}"
    _check_media(_object(header.get(header_type), media_where), header_type, media_where)


def _check_media(media: dict[str, Any], kind: str, where: str) -> None:
    _keys(media, ("id", "link", *HEADER_MEDIA[kind]), where)
    media_id, link = media.get("id"), media.get("link")
    if bool(media_id) == bool(link):
        raise InvalidMessageError(f"{where} needs exactly one of id or link")
    if media_id is not None and not (isinstance(media_id, str) and media_id.isdigit()):
        raise InvalidMessageError(f"{where}.id must be a media id (digits)")
    if link is not None and not (
        isinstance(link, str) and link.startswith(("http://", "https://"))
    ):
        raise InvalidMessageError(f"{where}.link must be an http or https URL")
    _text(media, "caption", limits.CAPTION, where)
    _text(media, "filename", FILENAME, where)


def _check_buttons(action: dict[str, Any]) -> None:
    _keys(action, ("buttons",), "interactive.action")
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        raise InvalidMessageError("interactive.action.buttons needs 1 to 3 buttons")
    if len(buttons) > limits.BUTTONS:
        raise InvalidMessageError(f"{len(buttons)} buttons; the limit is {limits.BUTTONS}")
    ids: set[str] = set()
    titles: set[str] = set()
    for index, item in enumerate(buttons):
        where = f"interactive.action.buttons[{index}]"
        button = _object(item, where)
        _keys(button, ("type", "reply"), where)
        if button.get("type") != "reply":
            raise InvalidMessageError(f"{where}.type must be 'reply'")
        reply = _object(button.get("reply"), f"{where}.reply")
        _keys(reply, ("id", "title"), f"{where}.reply")
        _text(reply, "id", limits.BUTTON_ID, f"{where}.reply", required=True)
        _text(reply, "title", limits.BUTTON_TITLE, f"{where}.reply", required=True)
        _unique(reply["id"], ids, f"{where}.reply.id")
        _unique(reply["title"], titles, f"{where}.reply.title")


def _check_sections(action: dict[str, Any]) -> None:
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        raise InvalidMessageError("interactive.action.sections needs 1 to 10 sections")
    if len(sections) > limits.LIST_SECTIONS:
        raise InvalidMessageError(f"{len(sections)} sections; the limit is {limits.LIST_SECTIONS}")
    row_ids: set[str] = set()
    for s_index, item in enumerate(sections):
        where = f"interactive.action.sections[{s_index}]"
        section = _object(item, where)
        _keys(section, ("title", "rows"), where)
        rows = section.get("rows")
        if not isinstance(rows, list) or not rows:
            raise InvalidMessageError(f"{where}.rows needs at least one row")
        _text(section, "title", limits.SECTION_TITLE, where, required=len(sections) > 1)
        for r_index, row_item in enumerate(rows):
            row_where = f"{where}.rows[{r_index}]"
            row = _object(row_item, row_where)
            _keys(row, ("id", "title", "description"), row_where)
            _text(row, "id", limits.ROW_ID, row_where, required=True)
            _text(row, "title", limits.ROW_TITLE, row_where, required=True)
            _text(row, "description", limits.ROW_DESCRIPTION, row_where)
            # Row ids are unique across sections: the reply names only the row.
            _unique(row["id"], row_ids, f"{row_where}.id")
    if len(row_ids) > limits.LIST_ROWS:
        raise InvalidMessageError(f"{len(row_ids)} rows; the limit is {limits.LIST_ROWS}")
