"""Request bodies, including the compatibility shapes existing scripts send."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from baton_operator_api.api.schemas import OperatorMessageIn, TakeoverIn
from baton_operator_api.feed import parse_position


def test_phone_is_an_alias_of_wa_id_and_plus_is_ignored() -> None:
    assert TakeoverIn.model_validate({"phone": "+5511999"}).customer == "5511999"
    assert TakeoverIn.model_validate({"wa_id": "5511999"}).customer == "5511999"
    with pytest.raises(ValidationError):
        TakeoverIn.model_validate({"reason": "no customer"})


@pytest.mark.parametrize(
    ("mime_type", "kind"),
    [
        ("image/jpeg", "image"),
        ("video/mp4", "video"),
        ("audio/ogg", "audio"),
        ("application/pdf", "document"),
    ],
)
def test_compat_media_kind_comes_from_the_mime_type(mime_type: str, kind: str) -> None:
    body = OperatorMessageIn.model_validate(
        {"phone": "1", "message": "see", "media": {"id": "9", "mime_type": mime_type}}
    )
    assert body.media is not None
    assert body.media.kind == kind
    assert body.body == "see"


def test_a_message_needs_exactly_one_kind_of_content() -> None:
    with pytest.raises(ValidationError):
        OperatorMessageIn.model_validate({"wa_id": "1"})
    with pytest.raises(ValidationError):
        OperatorMessageIn.model_validate(
            {"wa_id": "1", "text": "x", "template": {"name": "t", "language": {"code": "en"}}}
        )


def test_last_event_id_positions() -> None:
    assert parse_position("1-0,2-3,0-0") == ["1-0", "2-3", "0-0"]
    assert parse_position("garbage") is None
    assert parse_position(None) is None
