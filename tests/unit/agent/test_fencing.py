"""The newer of the agent's control copy and the operator-api's fencing hash."""

from __future__ import annotations

from baton_agent.db.repo import Control
from baton_agent.fencing import newer, parse_hash
from baton_shared.events import Mode


def test_the_hash_wins_with_a_higher_epoch_or_another_state_under_the_same() -> None:
    own = Control(Mode.PENDING_HUMAN, 2)  # the agent's own hand-off, say
    assert newer(own, None) is own
    assert newer(own, Control(Mode.PENDING_HUMAN, 2)) is own  # the hand-off, accepted
    assert newer(own, Control(Mode.AI, 1)) is own
    assert newer(own, Control(Mode.AI, 3)) == Control(Mode.AI, 3)
    # An operator resolved under the same epoch: the operator-api refused the hand-off.
    assert newer(own, Control(Mode.AI, 2)) == Control(Mode.AI, 2)
    # A hash without a mode it knows decides nothing at the same epoch (a newer one still
    # keeps the AI silent).
    assert newer(Control(Mode.AI, 2), parse_hash({"epoch": "2"})) == Control(Mode.AI, 2)
    assert newer(Control(Mode.AI, 2), parse_hash({"epoch": "3"})) == Control(Mode.UNKNOWN, 3)


def test_hash_fields_are_read_like_the_sender_does() -> None:
    assert parse_hash({"mode": "operator", "epoch": "4", "operator": "ana"}) == Control(
        Mode.OPERATOR, 4
    )
    assert parse_hash({"mode": "resolved", "epoch": "5"}) == Control(Mode.AI, 5)
    assert parse_hash({"mode": "bogus", "epoch": "6"}) == Control(Mode.UNKNOWN, 6)
    assert parse_hash({"mode": "ai"}) is None
    assert parse_hash({"mode": "ai", "epoch": "x"}) is None
