"""The closing rules as pure functions."""

from __future__ import annotations

import pytest

from baton_buffer.rules import Closing, Rules, closing, next_check
from baton_shared.events import TurnCloseReason as R

DEFAULT = Rules(quiet_seconds=4, max_seconds=15, max_messages=20, stuck_turn_seconds=120)


@pytest.mark.parametrize(
    ("rules", "arrivals", "expected"),
    [
        (DEFAULT, [0], Closing(4, R.QUIET)),
        (DEFAULT, [0, 1, 2], Closing(6, R.QUIET)),
        (DEFAULT, [0, 3, 6, 9, 12], Closing(15, R.MAX_TIME)),
        (DEFAULT, [2, 0, 1], Closing(6, R.QUIET)),  # any arrival order
        (Rules(4, 15, 3, 120), [0, 1, 2], Closing(2, R.MAX_MESSAGES)),
        (Rules(4, 15, 3, 120), [0, 1, 2, 3, 3.5], Closing(2, R.MAX_MESSAGES)),
        (Rules(0, 15, 20, 120), [0, 1], Closing(1, R.QUIET)),
        (Rules(4, 0, 20, 120), [5], Closing(5, R.MAX_TIME)),
        (Rules(4, 15, 0, 120), [5, 6], Closing(5, R.MAX_MESSAGES)),
        (Rules(0, 0, 0, 120), [5], Closing(5, R.MAX_MESSAGES)),
        (Rules(4, 4, 20, 120), [0], Closing(4, R.QUIET)),  # a tie is a quiet close
    ],
)
def test_closing(rules: Rules, arrivals: list[float], expected: Closing) -> None:
    assert closing(rules, arrivals) == expected


def test_an_empty_burst_never_closes() -> None:
    with pytest.raises(ValueError, match="empty"):
        closing(DEFAULT, [])


def test_next_check_waits_for_the_turn_in_flight() -> None:
    assert next_check(DEFAULT, 100.0, [101.0]) == 220.0
    assert next_check(DEFAULT, None, [101.0]) == 105.0
    assert next_check(DEFAULT, None, []) is None


def test_turn_cap() -> None:
    assert DEFAULT.turn_cap == 20
    assert Rules(4, 15, 0, 120).turn_cap is None
