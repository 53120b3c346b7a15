"""The turn after a person had the conversation tells the model so; no other turn does."""

from __future__ import annotations

import pytest

from baton_agent.db.repo import Control, TurnState
from baton_agent.transcript import BACK_FROM_A_PERSON, turn_message
from baton_shared.events import Mode


def state(last_turn_epoch: int | None) -> TurnState:
    return TurnState(False, Control(Mode.AI, 0), None, 0, [], last_turn_epoch)


@pytest.mark.parametrize(
    ("last_turn_epoch", "control", "back"),
    [
        (None, Control(Mode.AI, 2), False),  # the conversation's first turn
        (2, Control(Mode.AI, 2), False),  # the AI had it all along
        (1, Control(Mode.AI, 2), True),  # taken over and handed back since
        (1, Control(Mode.OPERATOR, 2), False),  # still with the person: no answer anyway
    ],
)
def test_back_from_a_person(last_turn_epoch: int | None, control: Control, back: bool) -> None:
    assert state(last_turn_epoch).back_from_a_person(control) is back


def test_the_note_heads_the_customers_messages() -> None:
    assert turn_message("t", [], back_from_a_person=True).content == (
        f"{BACK_FROM_A_PERSON}\n[The customer sent an empty message]"
    )
    assert BACK_FROM_A_PERSON not in str(turn_message("t", []).content)
