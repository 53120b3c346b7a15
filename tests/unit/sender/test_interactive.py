"""Interactive messages: the sender's checks and the emulator's validation stay in step.

Every case breaks exactly one rule of a valid message; the sender must refuse it before any
call, and the emulator (which validates as the Cloud API does) must refuse it too.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from baton_devtools.whatsapp.errors import GraphError
from baton_devtools.whatsapp.validation import validate_send
from baton_sender.whatsapp.errors import InvalidMessageError
from baton_sender.whatsapp.interactive import check_interactive
from baton_sender.whatsapp.payloads import build_body
from baton_shared.events import Author, OutboundCommand, OutboundKind

BUSINESS = "15550000001"
DROP = object()  # as a value: remove the key

BUTTONS: dict[str, Any] = {
    "type": "button",
    "header": {"type": "text", "text": "Your order"},
    "body": {"text": "What would you like to do?"},
    "footer": {"text": "Baton"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "track", "title": "Track it"}},
            {"type": "reply", "reply": {"id": "refund", "title": "Refund"}},
        ]
    },
}
LIST: dict[str, Any] = {
    "type": "list",
    "header": {"type": "text", "text": "Delivery"},
    "body": {"text": "Pick a slot"},
    "footer": {"text": "Baton"},
    "action": {
        "button": "Slots",
        "sections": [
            {"title": "Morning", "rows": [{"id": "m1", "title": "9-10", "description": "Early"}]},
            {"title": "Evening", "rows": [{"id": "e1", "title": "18-19"}]},
        ],
    },
}
IMAGE_HEADER: dict[str, Any] = {
    **BUTTONS,
    "header": {"type": "image", "image": {"link": "https://example.com/a.jpg", "caption": "c"}},
}
DOCUMENT_HEADER: dict[str, Any] = {
    **BUTTONS,
    "header": {"type": "document", "document": {"id": "1234567890", "filename": "a.pdf"}},
}
CTA_URL: dict[str, Any] = {
    "type": "cta_url",
    "body": {"text": "See your order"},
    "action": {
        "name": "cta_url",
        "parameters": {"display_text": "Open", "url": "https://example.com/o/1"},
    },
}


def changed(base: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `base` with the value at `path` replaced (or removed with `DROP`)."""
    payload = copy.deepcopy(base)
    target: Any = payload
    for key in path[:-1]:
        target = target[key]
    if value is DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


def buttons(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in pairs]


def rows(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{r}", "title": f"Row {r}"} for r in range(n)]


def sections(n: int) -> list[dict[str, Any]]:
    return [{"title": f"S{s}", "rows": rows(f"s{s}-", 1)} for s in range(n)]


def case(
    name: str, base: dict[str, Any], path: tuple[str | int, ...], value: Any, problem: str
) -> Any:
    return pytest.param(changed(base, path, value), problem, id=name)


SECTIONS = ("action", "sections")
ROW = (*SECTIONS, 0, "rows", 0)
BUTTON = ("action", "buttons", 0)
REPLY = (*BUTTON, "reply")
MEDIA = ("header", "image")

BROKEN = [
    # The interactive object and its kind.
    case("unknown key", BUTTONS, ("foter",), {"text": "x"}, "unknown key 'foter'"),
    case("type missing", BUTTONS, ("type",), DROP, "interactive.type is required"),
    case("type unknown", BUTTONS, ("type",), "carousel", "'carousel' is not one of"),
    case("action missing", BUTTONS, ("action",), DROP, "interactive.action is required"),
    case("action not an object", BUTTONS, ("action",), ["x"], "action must be an object"),
    # Body.
    case("button body missing", BUTTONS, ("body",), DROP, "interactive.body is required"),
    case("list body missing", LIST, ("body",), DROP, "interactive.body is required"),
    case("cta_url body missing", CTA_URL, ("body",), DROP, "interactive.body is required"),
    case("body not an object", BUTTONS, ("body",), "hi", "body must be an object"),
    case("body unknown key", BUTTONS, ("body", "txt"), "x", "unknown key 'txt'"),
    case("body text missing", BUTTONS, ("body", "text"), DROP, "body.text is required"),
    case("body text empty", BUTTONS, ("body", "text"), "", "non-empty"),
    case("button body 1025", BUTTONS, ("body", "text"), "x" * 1025, "limit is 1024"),
    case("cta_url body 1025", CTA_URL, ("body", "text"), "x" * 1025, "limit is 1024"),
    case("list body 4097", LIST, ("body", "text"), "x" * 4097, "limit is 4096"),
    # Footer.
    case("footer not an object", BUTTONS, ("footer",), "Baton", "footer must be an object"),
    case("footer unknown key", BUTTONS, ("footer", "link"), "x", "unknown key 'link'"),
    case("footer text missing", BUTTONS, ("footer", "text"), DROP, "footer.text is required"),
    case("footer text 61", LIST, ("footer", "text"), "x" * 61, "limit is 60"),
    # Header.
    case("header not an object", BUTTONS, ("header",), "Hi", "header must be an object"),
    case("header type missing", BUTTONS, ("header", "type"), DROP, "header.type is required"),
    case("header type unknown", BUTTONS, ("header", "type"), "sticker", "'sticker' is not"),
    case("list header media", LIST, ("header",), IMAGE_HEADER["header"], "'image' is not"),
    case("header unknown key", BUTTONS, ("header", "image"), {"id": "1"}, "unknown key 'image'"),
    case("header text missing", BUTTONS, ("header", "text"), DROP, "header.text is required"),
    case("button header 61", BUTTONS, ("header", "text"), "x" * 61, "limit is 60"),
    case("list header 61", LIST, ("header", "text"), "x" * 61, "limit is 60"),
    case("header media missing", IMAGE_HEADER, MEDIA, DROP, "header.image is required"),
    case("header media id and link", IMAGE_HEADER, (*MEDIA, "id"), "1", "exactly one"),
    case("header media neither", IMAGE_HEADER, (*MEDIA, "link"), DROP, "exactly one"),
    case(
        "header media id not digits",
        DOCUMENT_HEADER,
        ("header", "document", "id"),
        "abc",
        "must be a media id",
    ),
    case("header media link not http", IMAGE_HEADER, (*MEDIA, "link"), "ftp://e/a", "http"),
    case("header media unknown key", IMAGE_HEADER, (*MEDIA, "filename"), "a", "unknown key"),
    case("header caption 1025", IMAGE_HEADER, (*MEDIA, "caption"), "c" * 1025, "limit is 1024"),
    case(
        "header filename 241",
        DOCUMENT_HEADER,
        ("header", "document", "filename"),
        "f" * 241,
        "limit is 240",
    ),
    # Reply buttons.
    case("buttons action unknown key", BUTTONS, ("action", "button"), "x", "unknown key"),
    case("buttons missing", BUTTONS, ("action", "buttons"), DROP, "needs 1 to 3 buttons"),
    case("no buttons", BUTTONS, ("action", "buttons"), [], "needs 1 to 3 buttons"),
    case(
        "4 buttons",
        BUTTONS,
        ("action", "buttons"),
        buttons(("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")),
        "4 buttons; the limit is 3",
    ),
    case("button not an object", BUTTONS, BUTTON, "Track", "buttons[0] must be an object"),
    case("button unknown key", BUTTONS, (*BUTTON, "url"), "x", "unknown key 'url'"),
    case("button type missing", BUTTONS, (*BUTTON, "type"), DROP, "type must be 'reply'"),
    case("button type not reply", BUTTONS, (*BUTTON, "type"), "url", "type must be 'reply'"),
    case("button reply missing", BUTTONS, REPLY, DROP, "buttons[0].reply is required"),
    case("button reply unknown key", BUTTONS, (*REPLY, "description"), "x", "unknown key"),
    case("button id missing", BUTTONS, (*REPLY, "id"), DROP, "reply.id is required"),
    case("button id 257", BUTTONS, (*REPLY, "id"), "i" * 257, "limit is 256"),
    case("button title missing", BUTTONS, (*REPLY, "title"), DROP, "reply.title is required"),
    case("button title 21", BUTTONS, (*REPLY, "title"), "t" * 21, "limit is 20"),
    case("button ids repeat", BUTTONS, (*REPLY, "id"), "refund", "'refund' is used twice"),
    case("button titles repeat", BUTTONS, (*REPLY, "title"), "Refund", "'Refund' is used twice"),
    # Lists.
    case("list action unknown key", LIST, ("action", "buttons"), [], "unknown key 'buttons'"),
    case("list button missing", LIST, ("action", "button"), DROP, "action.button is required"),
    case("list button 21", LIST, ("action", "button"), "b" * 21, "limit is 20"),
    case("sections missing", LIST, SECTIONS, DROP, "needs 1 to 10 sections"),
    case("no sections", LIST, SECTIONS, [], "needs 1 to 10 sections"),
    # Eleven sections need eleven rows: the row limit is broken as well, unavoidably.
    case("11 sections", LIST, SECTIONS, sections(11), "11 sections; the limit is 10"),
    case("section not an object", LIST, (*SECTIONS, 0), "S", "must be an object"),
    case("section unknown key", LIST, (*SECTIONS, 0, "id"), "s", "unknown key 'id'"),
    case("section title missing", LIST, (*SECTIONS, 0, "title"), DROP, "title is required"),
    case("section title 25", LIST, (*SECTIONS, 0, "title"), "s" * 25, "limit is 24"),
    case("section rows missing", LIST, (*SECTIONS, 0, "rows"), DROP, "at least one row"),
    case("section rows empty", LIST, (*SECTIONS, 0, "rows"), [], "at least one row"),
    case("row not an object", LIST, ROW, "9-10", "rows[0] must be an object"),
    case("row unknown key", LIST, (*ROW, "image"), "x", "unknown key 'image'"),
    case("row id missing", LIST, (*ROW, "id"), DROP, "rows[0].id is required"),
    case("row id 201", LIST, (*ROW, "id"), "i" * 201, "limit is 200"),
    case("row title missing", LIST, (*ROW, "title"), DROP, "rows[0].title is required"),
    case("row title 25", LIST, (*ROW, "title"), "t" * 25, "limit is 24"),
    case("row description 73", LIST, (*ROW, "description"), "d" * 73, "limit is 72"),
    case("row ids repeat across sections", LIST, (*ROW, "id"), "e1", "'e1' is used twice"),
    case("11 rows in all", LIST, (*SECTIONS, 1, "rows"), rows("e", 10), "11 rows"),
]


def message(interactive: dict[str, Any]) -> dict[str, Any]:
    body = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    return {**body, "to": "+447700900123", "type": "interactive", "interactive": interactive}


def command(interactive: dict[str, Any]) -> OutboundCommand:
    return OutboundCommand(
        command_id="c1", phone_number_id="1", to="447700900123", author=Author.AI,
        kind=OutboundKind.INTERACTIVE, interactive=interactive,
    )  # fmt: skip


@pytest.mark.parametrize(("interactive", "problem"), BROKEN)
def test_each_broken_rule_is_refused_by_sender_and_emulator(
    interactive: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidMessageError, match=re.escape(problem)):
        check_interactive(interactive)
    with pytest.raises(GraphError):
        validate_send(message(interactive), BUSINESS)


@pytest.mark.parametrize(
    "interactive",
    [BUTTONS, LIST, IMAGE_HEADER, DOCUMENT_HEADER, CTA_URL],
    ids=["buttons", "list", "image header", "document header", "cta_url"],
)
def test_valid_messages_are_accepted_by_sender_and_emulator(interactive: dict[str, Any]) -> None:
    body = build_body(command(interactive))
    assert body["interactive"] == interactive
    assert validate_send(body, BUSINESS).type == "interactive"


def test_the_limits_are_exact() -> None:
    """At each limit the message still passes both: the cases above fail by one only."""
    at_limit = changed(LIST, (*ROW, "title"), "t" * 24)
    at_limit = changed(at_limit, (*SECTIONS, 1, "rows"), rows("e", 9))
    at_limit = changed(at_limit, ("body", "text"), "x" * 4096)
    three = changed(
        BUTTONS, ("action", "buttons"), buttons(("a", "a" * 20), ("b", "B"), ("c", "C"))
    )
    for interactive in (at_limit, three):
        check_interactive(interactive)
        validate_send(message(interactive), BUSINESS)
