"""`offer_choices`: buttons or a list within WhatsApp's limits, or a clear error."""

from __future__ import annotations

import pytest

from baton_agent.config import MediaCatalogue
from baton_agent.graph.choices import ChoicesError, as_text, choice_message
from baton_agent.graph.tools import CHOICES_SENT, OFFER_CHOICES, call_tool
from baton_sender.whatsapp.interactive import check_interactive


def test_up_to_three_short_answers_are_reply_buttons() -> None:
    got = choice_message(" Size? ", ["Small", "Medium", "Small", " ", "Large"])
    assert got["type"] == "button"
    titles = [b["reply"]["title"] for b in got["action"]["buttons"]]
    assert titles == ["Small", "Medium", "Large"]  # blanks and repeats dropped
    assert got["body"]["text"] == "Size?"
    check_interactive(got)


def test_more_or_longer_answers_are_a_list_with_the_whole_answer_described() -> None:
    long = "Delivery to a pickup point near your home"
    got = choice_message("How?", ["Pickup", long], button="Elegir una opción ahora")
    assert got["type"] == "list"
    [row_1, row_2] = got["action"]["sections"][0]["rows"]
    assert row_1 == {"id": "choice-1", "title": "Pickup"}
    assert len(row_2["title"]) <= 24
    assert row_2["title"].endswith("…")
    assert row_2["description"] == long
    assert got["action"]["button"] == "Elegir una opción a…"  # cut to 20
    assert as_text(got) == f"How?\n1. Pickup\n2. {long}"
    check_interactive(got)
    ten = choice_message("Pick a day", [f"Day {n}" for n in range(1, 11)])
    assert len(ten["action"]["sections"][0]["rows"]) == 10
    assert ten["action"]["button"] == "Choose"
    check_interactive(ten)


@pytest.mark.parametrize(
    ("text", "choices", "problem"),
    [
        ("", ["a", "b"], "empty"),
        ("x" * 1025, ["a", "b"], "under 1024"),
        ("q", ["only one"], "2 to 10"),
        ("q", [f"c{n}" for n in range(11)], "2 to 10"),
        ("q", ["same", " same "], "2 to 10"),
    ],
)
def test_what_cannot_be_asked_is_refused_with_the_reason(
    text: str, choices: list[str], problem: str
) -> None:
    with pytest.raises(ChoicesError, match=problem):
        choice_message(text, choices)


def test_the_tool_answers_the_model_and_makes_one_output() -> None:
    catalogue = MediaCatalogue(items=[])
    ok = call_tool(OFFER_CHOICES, {"text": "Size?", "choices": ["S", "M"]}, catalogue)
    assert ok.result == CHOICES_SENT
    [output] = ok.outputs
    assert output["kind"] == "interactive"
    assert output["text"] == "Size?\n1. S\n2. M"
    bad = call_tool(OFFER_CHOICES, {"text": "Size?", "choices": "S"}, catalogue)
    assert bad.result.startswith("Error: give 2 to 10")
    assert bad.outputs == []
