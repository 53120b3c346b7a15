"""Request bodies and WhatsApp's limits, checked before any call."""

from __future__ import annotations

from typing import Any

import pytest

from baton_sender.whatsapp.errors import InvalidMessageError, WhatsAppError
from baton_sender.whatsapp.limits import split_text
from baton_sender.whatsapp.payloads import build_body
from baton_shared.events import Author, OutboundCommand, OutboundKind, OutboundMedia


def cmd(kind: OutboundKind, **fields: Any) -> OutboundCommand:
    return OutboundCommand(
        command_id="c1", phone_number_id="1", to="447700900123", author=Author.AI, kind=kind,
        **fields,
    )  # fmt: skip


def test_text_body_with_preview_and_reply_context() -> None:
    body = build_body(cmd(OutboundKind.TEXT, text="hi", preview_url=True, reply_to="w1"), "c1#0")
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+447700900123",
        "type": "text",
        "text": {"preview_url": True, "body": "hi"},
        "context": {"message_id": "w1"},
        "biz_opaque_callback_data": "c1#0",
    }


def test_reaction_removal_and_typing_indicator() -> None:
    reaction = build_body(cmd(OutboundKind.REACTION, reply_to="w1", emoji=""))
    assert reaction["reaction"] == {"message_id": "w1", "emoji": ""}
    assert "context" not in reaction
    typing = build_body(cmd(OutboundKind.TYPING, reply_to="w2"))
    assert typing == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "w2",
        "typing_indicator": {"type": "text"},
    }


def test_document_by_id_with_filename() -> None:
    media = OutboundMedia(id="123", filename="a.pdf", caption="A")
    body = build_body(cmd(OutboundKind.DOCUMENT, media=media))
    assert body["document"] == {"id": "123", "caption": "A", "filename": "a.pdf"}


def test_voice_note_and_plain_audio() -> None:
    voice = build_body(cmd(OutboundKind.AUDIO, media=OutboundMedia(id="123", voice=True)))
    assert voice["audio"] == {"id": "123", "voice": True}
    audio = build_body(cmd(OutboundKind.AUDIO, media=OutboundMedia(link="https://x/a.mp3")))
    assert audio["audio"] == {"link": "https://x/a.mp3"}


def _buttons(n: int, title: str = "T") -> dict[str, Any]:
    buttons = [{"type": "reply", "reply": {"id": f"b{i}", "title": title}} for i in range(n)]
    return {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": buttons}}


def _list(rows: int, sections: int = 1) -> dict[str, Any]:
    return {
        "type": "list",
        "body": {"text": "Pick"},
        "action": {
            "button": "Open",
            "sections": [
                {"title": f"S{s}", "rows": [{"id": f"{s}-{r}", "title": "R"} for r in range(rows)]}
                for s in range(sections)
            ],
        },
    }


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        (cmd(OutboundKind.TEXT, text="x" * 4097), "limit is 4096"),
        (cmd(OutboundKind.TEXT, text="  "), "non-empty"),
        (cmd(OutboundKind.IMAGE, media=OutboundMedia(link="l", id="i")), "exactly one"),
        (cmd(OutboundKind.IMAGE, media=OutboundMedia(link="l", caption="c" * 1025)), "1024"),
        (cmd(OutboundKind.STICKER, media=OutboundMedia(link="l", caption="c")), "cannot have"),
        (cmd(OutboundKind.IMAGE, media=OutboundMedia(link="l", filename="f")), "filename"),
        (cmd(OutboundKind.VIDEO, media=OutboundMedia(link="l", voice=True)), "voice note"),
        (cmd(OutboundKind.INTERACTIVE, interactive=_buttons(4)), "4 buttons"),
        (cmd(OutboundKind.INTERACTIVE, interactive=_buttons(2, "t" * 21)), "limit is 20"),
        (cmd(OutboundKind.INTERACTIVE, interactive=_list(11)), "11 rows"),
        (cmd(OutboundKind.INTERACTIVE, interactive=_list(1, sections=11)), "11 sections"),
        (cmd(OutboundKind.TEMPLATE, template={"name": "t"}), "language.code"),
        (cmd(OutboundKind.REACTION, reply_to="w"), "emoji"),
        (cmd(OutboundKind.MARK_READ), "reply_to"),
        (cmd("carousel"), "unsupported"),  # type: ignore[arg-type]
    ],
)
def test_limits_are_refused_with_a_clear_problem(command: OutboundCommand, problem: str) -> None:
    with pytest.raises(InvalidMessageError, match=problem):
        build_body(command)


def test_split_text_keeps_words_and_limit() -> None:
    text = "abc " * 2000
    parts = split_text(text)
    assert all(len(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert split_text("short") == ["short"]
    assert [len(p) for p in split_text("x" * 5000)] == [4096, 904]


def test_graph_error_parsing_and_classes() -> None:
    body = {"error": {"code": 130429, "message": "(#130429) Rate limit hit",
                      "error_data": {"details": "throughput"}}}  # fmt: skip
    error = WhatsAppError.from_response(400, body)
    assert (error.code, error.details, error.transient) == (130429, "throughput", True)
    assert WhatsAppError.from_response(401, {"error": {"code": 190}}).token_error
    assert not WhatsAppError.from_response(400, {"error": {"code": 131026}}).transient
    assert WhatsAppError.from_response(502, "<html>").transient
