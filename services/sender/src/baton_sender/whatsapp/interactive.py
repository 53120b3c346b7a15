"""Checks of interactive reply-button and list messages against WhatsApp's limits."""

from __future__ import annotations

from typing import Any

from baton_sender.whatsapp.errors import InvalidMessageError
from baton_shared import whatsapp_limits as limits


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


def check_interactive(interactive: dict[str, Any]) -> None:
    """Raise `InvalidMessageError` when buttons or lists break WhatsApp's limits."""
    kind = interactive.get("type")
    body = interactive.get("body")
    header = interactive.get("header")
    action = interactive.get("action")
    if not isinstance(action, dict):
        raise InvalidMessageError("interactive.action is required")
    _text(interactive.get("footer"), "text", limits.FOOTER, "interactive.footer")
    if kind == "button":
        _text(body, "text", limits.INTERACTIVE_BODY, "interactive.body", required=True)
        _check_buttons(action)
    elif kind == "list":
        _text(body, "text", limits.LIST_BODY, "interactive.body", required=True)
        if isinstance(header, dict):
            _text(header, "text", limits.HEADER_TEXT, "interactive.header")
        _text(action, "button", limits.LIST_BUTTON, "interactive.action", required=True)
        _check_sections(action)
    elif not isinstance(kind, str):
        raise InvalidMessageError("interactive.type is required")


def _check_buttons(action: dict[str, Any]) -> None:
    buttons = action.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        raise InvalidMessageError("interactive.action.buttons needs 1 to 3 buttons")
    if len(buttons) > limits.BUTTONS:
        raise InvalidMessageError(f"{len(buttons)} buttons; the limit is {limits.BUTTONS}")
    for index, button in enumerate(buttons):
        reply = button.get("reply") if isinstance(button, dict) else None
        where = f"interactive.action.buttons[{index}].reply"
        _text(reply, "id", limits.BUTTON_ID, where, required=True)
        _text(reply, "title", limits.BUTTON_TITLE, where, required=True)


def _check_sections(action: dict[str, Any]) -> None:
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections:
        raise InvalidMessageError("interactive.action.sections needs 1 to 10 sections")
    if len(sections) > limits.LIST_SECTIONS:
        raise InvalidMessageError(f"{len(sections)} sections; the limit is {limits.LIST_SECTIONS}")
    total = 0
    for s_index, section in enumerate(sections):
        where = f"interactive.action.sections[{s_index}]"
        rows = section.get("rows") if isinstance(section, dict) else None
        if not isinstance(rows, list) or not rows:
            raise InvalidMessageError(f"{where}.rows needs at least one row")
        _text(section, "title", limits.SECTION_TITLE, where, required=len(sections) > 1)
        total += len(rows)
        for r_index, row in enumerate(rows):
            row_where = f"{where}.rows[{r_index}]"
            _text(row, "id", limits.ROW_ID, row_where, required=True)
            _text(row, "title", limits.ROW_TITLE, row_where, required=True)
            _text(row, "description", limits.ROW_DESCRIPTION, row_where)
    if total > limits.LIST_ROWS:
        raise InvalidMessageError(f"{total} rows; the limit is {limits.LIST_ROWS}")
