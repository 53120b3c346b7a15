"""Every webhook fixture parses into the expected messages, statuses, errors and rejections."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from baton_ingress.parsing import parse_webhook
from baton_shared.events import DeliveryStatus, MessageType

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"
RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
M = "447700900123"

# fixture -> (messages as (type, text, wa_id), statuses, platform error codes, rejections, ignored)
EXPECTED: dict[str, tuple[list[tuple[str, str | None, str | None]], list[str], list[int], int, list[str]]] = {
    "text_reply": ([("text", "My order #4471 still hasn't arrived", M)], [], [], 0, []),
    "image_caption": ([("image", "Box arrived crushed", M)], [], [], 0, []),
    "audio_voice": ([("audio", None, M)], [], [], 0, []),
    "audio_file": ([("audio", None, M)], [], [], 0, []),
    "video": ([("video", "Unboxing", M)], [], [], 0, []),
    "document": ([("document", "invoice-4471.pdf", M)], [], [], 0, []),
    "sticker": ([("sticker", None, M)], [], [], 0, []),
    "location": (
        [("location", "Location: Depot North, 12 Example Rd, London (51.50135, -0.14189)", M)],
        [], [], 0, [],
    ),
    "contacts": ([("contacts", "Contact: John Smith (+1 415 555 0100)", M)], [], [], 0, []),
    "interactive_button_reply": ([("interactive", "Request refund", M)], [], [], 0, []),
    "interactive_list_reply": ([("interactive", "9:00 tomorrow", M)], [], [], 0, []),
    "interactive_nfm_reply": ([("interactive", "Sent", M)], [], [], 0, []),
    "button_template_reply": ([("button", "Stop promotions", M)], [], [], 0, []),
    "reaction": ([("reaction", "\N{THUMBS UP SIGN}", M)], [], [], 0, []),
    "reaction_removed": ([("reaction", None, M)], [], [], 0, []),
    "order": ([("order", "Order: 2 x sku-1, 1 x sku-2 (Deliver before noon)", M)], [], [], 0, []),
    "system_changed_number": (
        [("system", "User A changed from 447700900123 to 447700900999", M)], [], [], 0, [],
    ),
    "unsupported": ([("unsupported", None, M)], [], [], 0, []),
    "unknown_future_type": ([("unknown", None, M)], [], [], 0, []),
    "bsuid_without_from": ([("text", "hi from a username", None)], [], [], 0, []),
    "non_ascii_escaped": (
        [("text", "¿Dónde está mi pedido? \N{PACKAGE} Ça va / ok", M)], [], [], 0, [],
    ),
    "unstorable_escapes": (  # a lone surrogate or NUL becomes U+FFFD; a whole pair stays
        [
            ("text", "half an emoji \N{REPLACEMENT CHARACTER} and a whole one \N{PACKAGE}", M),
            ("text", "nul\N{REPLACEMENT CHARACTER}byte \N{REPLACEMENT CHARACTER}", M),
        ],
        [], [], 0, [],
    ),
    "duplicate_in_batch": ([("text", "once", M), ("text", "once", M)], [], [], 0, []),
    "malformed_items": ([("text", "fine", M)], [], [], 2, []),
    "status_delivered": ([], ["delivered"], [], 0, []),
    "status_failed": ([], ["failed"], [], 0, []),
    "status_bsuid": ([], ["sent"], [], 0, []),
    "statuses_out_of_order": ([], ["read", "sent", "delivered", "read", "played"], [], 0, []),
    "platform_errors": ([], [], [130429], 0, []),
    "template_status_update": ([], [], [], 0, ["message_template_status_update"]),
    "batch_everything": (
        [
            ("text", "Here is the invoice", M),
            ("document", "invoice-4471.pdf", M),
            ("text", "Me too", "447700900456"),
            ("text", "Second business number", "12025550123"),
        ],
        ["sent", "delivered"], [131000], 0, [],
    ),
}  # fmt: skip


def parse(name: str, **kwargs: Any) -> Any:
    return parse_webhook((FIXTURES / f"{name}.json").read_text(), received_at=RECEIVED, **kwargs)


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_as_expected(name: str) -> None:
    messages, statuses, error_codes, rejections, ignored = EXPECTED[name]
    parsed = parse(name)
    assert [(m.type.value, m.text, m.wa_id) for m in parsed.messages] == messages
    assert [s.status.value for s in parsed.statuses] == statuses
    assert [e.code for group in parsed.errors for e in group.errors] == error_codes
    assert len(parsed.rejections) == rejections
    assert parsed.ignored_fields == ignored
    for message in parsed.messages:  # every message keeps its raw object and business number
        assert message.raw["id"] == message.message_id
        assert message.phone_number_id.startswith("420")


def test_media_metadata_and_voice_flag() -> None:
    voice = parse("audio_voice").messages[0]
    assert voice.media is not None
    assert (voice.media.id, voice.media.mime_type, voice.media.voice) == (
        "2039485761029384",
        "audio/ogg; codecs=opus",
        True,
    )
    image = parse("image_caption").messages[0].media
    assert image is not None
    assert (image.caption, image.sha256) == (
        "Box arrived crushed",
        "q3Zk1vJr2mH0yT8cXw4bN6sPfLd9aEuGiOoR5tVzYQk=",
    )
    assert parse("audio_file").messages[0].media.voice is False  # type: ignore[union-attr]


def test_identity_names_and_context() -> None:
    text = parse("text_reply").messages[0]
    assert (text.user_id, text.customer_name, text.context_message_id) == (
        "GB.1029384756102938",
        "Maria Lopez",
        "wamid.OUT0001",
    )
    assert text.display_phone_number == "15557654321"
    assert text.timestamp == datetime.fromtimestamp(1767261601, UTC)
    bsuid = parse("bsuid_without_from").messages[0]
    assert (bsuid.wa_id, bsuid.user_id, bsuid.customer_id) == (
        None,
        "US.13491208655302741918",
        "US.13491208655302741918",
    )
    reaction = parse("reaction").messages[0]
    assert reaction.context_message_id == "wamid.OUT0004"


def test_unknown_types_and_statuses_are_kept_raw() -> None:
    future = parse("unknown_future_type").messages[0]
    assert future.type is MessageType.UNKNOWN
    assert future.raw["type"] == "hologram"
    assert future.raw["hologram"] == {"frames": 42, "note": "from the future"}
    played = parse("statuses_out_of_order").statuses[-1]
    assert played.status is DeliveryStatus.PLAYED  # a voice message first played
    assert played.raw["status"] == "played"


def test_failed_status_carries_its_errors() -> None:
    failed = parse("status_failed").statuses[0]
    assert [(e.code, e.title) for e in failed.errors] == [(131047, "Re-engagement message")]
    assert failed.errors[0].details is not None
    assert failed.recipient_id == M


def test_allow_list_rejects_unknown_numbers_and_keeps_the_rest() -> None:
    parsed = parse("batch_everything", allowed_numbers={"420123456789012"})
    assert [m.text for m in parsed.messages] == [
        "Here is the invoice",
        "invoice-4471.pdf",
        "Me too",
    ]
    assert parsed.errors == []  # the only errors were on the other number
    assert len(parsed.rejections) == 2
    assert all("420999999999999" in r.reason for r in parsed.rejections)
    assert parsed.rejections[0].where == "entry[1].changes[0]"


def test_malformed_parts_are_rejected_with_where_and_why() -> None:
    rejections = parse("malformed_items").rejections
    assert [(r.where, r.reason) for r in rejections] == [
        ("entry[0].changes[0].messages[1]", "message without `id`"),
        (
            "entry[0].changes[0].messages[2]",
            "message wamid.FIXTURE0042 without `from` or `from_user_id`",
        ),
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "body is not JSON"),
        ("[1, 2]", "body has no `entry` array"),
        ('{"object": "whatsapp_business_account", "entry": {}}', "body has no `entry` array"),
    ],
)
def test_unusable_body_is_one_rejection(body: str, reason: str) -> None:
    parsed = parse_webhook(body, received_at=RECEIVED)
    assert parsed.messages == []
    assert [r.where for r in parsed.rejections] == ["body"]
    assert parsed.rejections[0].reason.startswith(reason)


def test_odd_shapes_never_crash() -> None:
    body = {
        "entry": [
            None,
            {"changes": "nope"},
            {"changes": [{"value": {"metadata": {"phone_number_id": 42}, "messages": [
                {"id": "wamid.X", "from": "1", "timestamp": "soon", "type": "text", "text": None},
                "not an object",
            ], "statuses": [{"id": "wamid.Y"}], "errors": [{"title": "no code"}]}}]},
        ]
    }  # fmt: skip
    parsed = parse_webhook(json.dumps(body), received_at=RECEIVED)
    [message] = parsed.messages
    assert (message.phone_number_id, message.text, message.timestamp) == ("42", None, RECEIVED)
    # `changes` that is not an array, the string message and the status without `status`
    assert [r.where for r in parsed.rejections] == [
        "entry[1]",
        "entry[2].changes[0].messages[1]",
        "entry[2].changes[0].statuses[0]",
    ]
    assert parsed.errors[0].errors[0].code == 0


def _one_change(number: object = "42", **value: Any) -> str:
    return json.dumps(
        {"entry": [{"changes": [{"value": {"metadata": {"phone_number_id": number}, **value}}]}]}
    )


def test_ids_longer_than_the_tables_hold_are_refused_with_their_part_only() -> None:
    good = {"id": "wamid.ok", "from": M, "type": "text", "text": {"body": "fine"}}
    body = _one_change(
        messages=[
            {**good, "id": "w" * 257},
            {**good, "id": "wamid.long-sender", "from": "1" * 65},
            {**good, "id": "wamid.long-media", "type": "image", "image": {"id": "m" * 257}},
            good,
        ],
        statuses=[
            {"id": "wamid.s1", "status": "x" * 65},
            {"id": "wamid.s2", "status": "sent", "recipient_id": "9" * 65},
            {"id": "wamid.s3", "status": "sent", "recipient_id": M},
        ],
    )
    parsed = parse_webhook(body, received_at=RECEIVED)
    assert [m.message_id for m in parsed.messages] == ["wamid.ok"]
    assert [s.message_id for s in parsed.statuses] == ["wamid.s3"]
    where = "entry[0].changes[0]"
    assert [r.where for r in parsed.rejections] == [
        f"{where}.messages[0]",
        f"{where}.messages[1]",
        f"{where}.messages[2]",
        f"{where}.statuses[0]",
        f"{where}.statuses[1]",
    ]
    assert all("over the" in r.reason for r in parsed.rejections)


def test_a_business_number_id_too_long_refuses_its_change() -> None:
    message = {"id": "wamid.1", "from": M, "type": "text", "text": {"body": "hi"}}
    parsed = parse_webhook(_one_change("4" * 65, messages=[message]), received_at=RECEIVED)
    assert parsed.messages == []
    [rejection] = parsed.rejections
    assert rejection.where == "entry[0].changes[0]"
    assert "phone_number_id" in rejection.reason


def test_names_longer_than_the_tables_hold_are_cut_not_refused() -> None:
    message = {
        "id": "wamid.1",
        "from": M,
        "type": "document",
        "document": {"id": "media-1", "filename": "f" * 300, "mime_type": "a/" + "b" * 300},
    }
    contacts = [{"wa_id": M, "profile": {"name": "n" * 300}}]
    parsed = parse_webhook(_one_change(messages=[message], contacts=contacts), received_at=RECEIVED)
    [kept] = parsed.messages
    assert kept.customer_name == "n" * 255
    assert kept.media is not None
    assert kept.media.filename == "f" * 255
    assert kept.media.mime_type == "a/" + "b" * 253
    assert parsed.rejections == []


@pytest.mark.parametrize("key", ["messages", "statuses", "errors"])
def test_a_container_that_is_not_an_array_is_a_rejection(key: str) -> None:
    parsed = parse_webhook(_one_change(**{key: {"id": "wamid.1"}}), received_at=RECEIVED)
    [rejection] = parsed.rejections
    assert (rejection.where, rejection.reason) == (
        "entry[0].changes[0]",
        f"`{key}` is not an array",
    )


def test_a_document_nested_deeper_than_the_stack_is_cleaned_without_recursion() -> None:
    # 900 levels: what the decoder accepts, and more than a walk of two frames per level can
    message = {"id": "wamid.1", "from": M, "type": "text", "text": {"body": "kept \ud83d"}}
    body = _one_change(messages=[message])
    deep = "[" * 900 + '"\\ud83d"' + "]" * 900
    body = body[:-1] + f', "debug": {deep}}}'
    parsed = parse_webhook(body, received_at=RECEIVED)
    [kept] = parsed.messages
    assert kept.text == "kept \ufffd"
    assert parsed.rejections == []
