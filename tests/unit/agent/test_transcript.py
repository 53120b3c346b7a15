"""What the model reads for every kind of customer message: never silence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from baton_agent.transcript import (
    describe,
    operator_key,
    operator_message,
    operator_text,
    turn_message,
)
from baton_shared.events import (
    Author,
    InboundMedia,
    InboundMessage,
    MessageType,
    OutboundKind,
    OutboundOutcome,
)


def message(kind: str, text: str | None = None, **extra: Any) -> InboundMessage:
    return InboundMessage(
        message_id="wamid.1",
        phone_number_id="1",
        wa_id="34600000000",
        timestamp=datetime.now(UTC),
        type=kind,
        text=text,
        **extra,
    )


CASES = [
    (message("text", "hola"), "hola"),
    (message("button", "Yes please"), "Yes please"),
    (message("sticker"), "[The customer sent a sticker]"),
    (message("reaction", "❤️"), "[The customer reacted with ❤️ to an earlier message]"),
    (message("reaction"), "[The customer removed a reaction from an earlier message]"),
    (
        message("image", "my broken cup", media=InboundMedia(id="m1")),
        '[The customer sent an image with the caption "my broken cup"; you cannot see or hear it]',
    ),
    (
        message("audio", media=InboundMedia(id="m2", voice=True)),
        "[The customer sent a voice note; you cannot see or hear it]",
    ),
    (
        message(
            "location",
            raw={"location": {"latitude": 40.4, "longitude": -3.7, "name": "Shop"}},
        ),
        "[The customer shared a location: Shop — 40.4, -3.7]",
    ),
    (
        message("contacts", raw={"contacts": [{"name": {"formatted_name": "Ana"}}]}),
        "[The customer shared contact cards: Ana]",
    ),
    (
        message("unsupported"),
        "[The customer sent a message WhatsApp cannot show here (type: unsupported)]",
    ),
    (
        message("brand_new_type"),
        "[The customer sent a message WhatsApp cannot show here (type: unknown)]",
    ),
]


@pytest.mark.parametrize(("inbound", "expected"), CASES, ids=[c[0].type.value for c in CASES])
def test_every_message_kind_has_a_description(inbound: InboundMessage, expected: str) -> None:
    assert describe(inbound) == expected


def test_a_turn_is_one_idempotent_user_message() -> None:
    turn = turn_message("t1", [message("text", "hi"), message("sticker")])
    assert turn.id == "turn:t1"
    assert turn.content == "hi\n[The customer sent a sticker]"
    assert message("image").type is MessageType.IMAGE


def test_operator_message_names_the_operator() -> None:
    outcome = OutboundOutcome(
        command_id="c1",
        phone_number_id="1",
        to="34600000000",
        author=Author.OPERATOR,
        kind=OutboundKind.TEXT,
        text="Refund sent.",
        details={"operator": "ana"},
    )
    sent = operator_message(operator_key(outcome), operator_text(outcome))
    assert sent.id == "operator:c1"
    assert sent.content == "(operator ana) Refund sent."
    part = outcome.model_copy(update={"wa_message_id": "wamid.part2"})
    assert operator_key(part) == "wamid.part2"  # each part of a long text is its own message
