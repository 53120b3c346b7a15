"""Validation of interactive messages: reply buttons and lists with their documented limits."""

from __future__ import annotations

from typing import Any

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
from baton_devtools.whatsapp.errors import invalid_value
from baton_devtools.whatsapp.validate_types import validate_media

INTERACTIVE_TYPES = (
    "button", "list", "cta_url", "flow", "product", "product_list", "catalog_message",
    "location_request_message",
)  # fmt: skip
MAX_BUTTONS = 3
MAX_ROWS = 10
MAX_SECTIONS = 10
PATH = "interactive"


def validate_interactive(obj: dict[str, Any]) -> None:
    """Validate an `interactive` object; buttons and lists in depth, other kinds loosely."""
    check_keys(obj, ["type", "header", "body", "footer", "action"], PATH)
    kind = require_enum(obj, "type", sub(PATH, "type"), INTERACTIVE_TYPES)
    body_max = 4096 if kind == "list" else 1024
    body = optional_obj(obj, "body", sub(PATH, "body"))
    if body is not None or kind in ("button", "list", "cta_url"):
        body = require_obj(obj, "body", sub(PATH, "body"))
        check_keys(body, ["text"], sub(PATH, "body"))
        require_str(body, "text", sub(sub(PATH, "body"), "text"), max_len=body_max)
    footer = optional_obj(obj, "footer", sub(PATH, "footer"))
    if footer is not None:
        check_keys(footer, ["text"], sub(PATH, "footer"))
        require_str(footer, "text", sub(sub(PATH, "footer"), "text"), max_len=60)
    _validate_header(obj, kind)
    action = require_obj(obj, "action", sub(PATH, "action"))
    if kind == "button":
        _validate_buttons(action)
    elif kind == "list":
        _validate_list(action)


def _validate_header(obj: dict[str, Any], kind: str) -> None:
    header = optional_obj(obj, "header", sub(PATH, "header"))
    if header is None:
        return
    path = sub(PATH, "header")
    allowed = ["text"] if kind == "list" else ["text", "image", "video", "document"]
    header_type = require_enum(header, "type", sub(path, "type"), allowed)
    check_keys(header, ["type", header_type], path)
    if header_type == "text":
        require_str(header, "text", sub(path, "text"), max_len=60)
    else:
        media = require_obj(header, header_type, sub(path, header_type))
        validate_media(media, sub(path, header_type), header_type)


def _validate_buttons(action: dict[str, Any]) -> None:
    path = sub(PATH, "action")
    check_keys(action, ["buttons"], path)
    buttons = require_list(action, "buttons", sub(path, "buttons"))
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        raise invalid_value(f"Buttons count is invalid. Min 1, max {MAX_BUTTONS} buttons.")
    ids: set[str] = set()
    titles: set[str] = set()
    for index, button in enumerate(buttons):
        button_path = sub(sub(path, "buttons"), index)
        if not isinstance(button, dict):
            raise invalid_value(f"Param {button_path} must be a JSON object.")
        check_keys(button, ["type", "reply"], button_path)
        require_enum(button, "type", sub(button_path, "type"), ["reply"])
        reply = require_obj(button, "reply", sub(button_path, "reply"))
        check_keys(reply, ["id", "title"], sub(button_path, "reply"))
        button_id = require_str(reply, "id", sub(sub(button_path, "reply"), "id"), max_len=256)
        title = require_str(reply, "title", sub(sub(button_path, "reply"), "title"))
        if len(title) > 20:
            raise invalid_value("Button title length is invalid. Max length is 20.")
        if button_id in ids or title in titles:
            raise invalid_value("Button ids and titles must be unique.")
        ids.add(button_id)
        titles.add(title)


def _validate_list(action: dict[str, Any]) -> None:
    path = sub(PATH, "action")
    check_keys(action, ["button", "sections"], path)
    require_str(action, "button", sub(path, "button"), max_len=20)
    sections = require_list(action, "sections", sub(path, "sections"))
    if not 1 <= len(sections) <= MAX_SECTIONS:
        raise invalid_value(f"Sections count is invalid. Min 1, max {MAX_SECTIONS} sections.")
    row_ids: set[str] = set()
    for index, section in enumerate(sections):
        section_path = sub(sub(path, "sections"), index)
        if not isinstance(section, dict):
            raise invalid_value(f"Param {section_path} must be a JSON object.")
        check_keys(section, ["title", "rows"], section_path)
        if len(sections) > 1:
            require_str(section, "title", sub(section_path, "title"), max_len=24)
        else:
            optional_str(section, "title", sub(section_path, "title"), max_len=24)
        rows = require_list(section, "rows", sub(section_path, "rows"))
        if not rows:
            raise invalid_value("Each section must have at least one row.")
        for row_index, row in enumerate(rows):
            row_ids.add(_validate_row(row, sub(sub(section_path, "rows"), row_index), row_ids))
    if len(row_ids) > MAX_ROWS:
        raise invalid_value(f"Total row count exceed max allowed count: {MAX_ROWS}")


def _validate_row(row: Any, path: str, seen: set[str]) -> str:
    if not isinstance(row, dict):
        raise invalid_value(f"Param {path} must be a JSON object.")
    check_keys(row, ["id", "title", "description"], path)
    row_id = require_str(row, "id", sub(path, "id"), max_len=200)
    title = require_str(row, "title", sub(path, "title"))
    if len(title) > 24:
        raise invalid_value("Row title length is invalid. Max length is 24.")
    optional_str(row, "description", sub(path, "description"), max_len=72)
    if row_id in seen:
        raise invalid_value("Row ids must be unique.")
    return row_id
