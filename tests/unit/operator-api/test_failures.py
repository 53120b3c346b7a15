"""Why a message did not reach the customer, as operators read it."""

from __future__ import annotations

from baton_operator_api.failures import explain
from baton_shared.events import PlatformError


def test_whatsapps_refusal_names_its_code_and_words() -> None:
    error = PlatformError(
        code=131026,
        title="Message undeliverable",
        details="The recipient's phone number is not a WhatsApp phone number.",
    )
    text = explain("rejected", error)
    assert text is not None
    assert text.startswith("Not sent: WhatsApp refused the message.")
    assert "WhatsApp error 131026: Message undeliverable" in text
    assert "not a WhatsApp phone number" in text


def test_our_own_reasons_say_what_to_do() -> None:
    assert "template" in str(explain("window_closed", PlatformError(code=131047)))
    assert "took over" in str(explain("fenced", None))
    assert "send it again" in str(explain("outcome_unknown", None))
    invalid = explain("invalid", None, {"problem": "text.body is 5000 characters"})
    assert (
        invalid == "Not sent: the message breaks WhatsApp's limits: text.body is 5000 characters."
    )
    assert explain("something_new", None) == "Not delivered."
    assert explain(None, None) is None
