"""The closing rules, as pure functions of a conversation's state (times in epoch seconds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from baton_shared.events import TurnCloseReason


@dataclass(frozen=True, slots=True)
class Rules:
    """When a burst closes and when an in-flight turn is given up on.

    Attributes:
        quiet_seconds: close after this long without a new message.
        max_seconds: close this long after the burst's first message.
        max_messages: close at this many messages (0: at the first message, no size cap).
        stuck_turn_seconds: give up on an unreported turn after this long.
    """

    quiet_seconds: float
    max_seconds: float
    max_messages: int
    stuck_turn_seconds: float

    @property
    def turn_cap(self) -> int | None:
        """Most messages one turn carries (None: no cap)."""
        return self.max_messages or None


@dataclass(frozen=True, slots=True)
class Closing:
    """When a burst closes and by which rule.

    Attributes:
        due: epoch seconds when the burst closes.
        closed_by: the rule that closes it first.
    """

    due: float
    closed_by: TurnCloseReason


def closing(rules: Rules, arrivals: Sequence[float]) -> Closing:
    """When the pending burst with these arrival times (in arrival order) closes."""
    if not arrivals:
        raise ValueError("an empty burst never closes")
    ordered = sorted(arrivals)
    first, last = ordered[0], ordered[-1]
    quiet, max_time = last + rules.quiet_seconds, first + rules.max_seconds
    if len(ordered) >= rules.max_messages:
        # the burst was full when its max_messages-th message arrived (0: at its first)
        full_at = ordered[max(rules.max_messages, 1) - 1]
        if full_at <= min(quiet, max_time):
            return Closing(full_at, TurnCloseReason.MAX_MESSAGES)
    if quiet <= max_time:
        return Closing(quiet, TurnCloseReason.QUIET)
    return Closing(max_time, TurnCloseReason.MAX_TIME)


def next_check(
    rules: Rules, in_flight_since: float | None, arrivals: Sequence[float]
) -> float | None:
    """When a replica should next look at a conversation; None when nothing can happen.

    With a turn in flight that is the stuck-turn deadline (the turn's completion reschedules
    the conversation sooner); otherwise the closing time of the pending burst.
    """
    if in_flight_since is not None:
        return in_flight_since + rules.stuck_turn_seconds
    if not arrivals:
        return None
    return closing(rules, arrivals).due
