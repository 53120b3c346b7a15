"""Why a message did not reach the customer, in words an operator can act on.

The sender reports a machine-readable `reason` (and WhatsApp's own error, when WhatsApp
refused the message or reported it failed); the transcript and the live feed show both the
code and this sentence, so nobody has to read the logs (users of similar systems found
delivery failures only there).
"""

from __future__ import annotations

from typing import Any

from baton_shared.events import (
    DeliveryStatus,
    DeliveryStatusChanged,
    Event,
    MessageFailed,
    MessageSuppressed,
    OutboundOutcome,
    PlatformError,
)

_REASONS = {
    "window_closed": (
        "Not delivered: more than 24 hours have passed since the customer's last message, so "
        "only an approved template can reach them now."
    ),
    "fenced": "Not sent: a person took over the conversation before this AI answer went out.",
    "outcome_unknown": (
        "Unknown: the sender stopped, or got no answer, while WhatsApp was taking it. If "
        "WhatsApp delivered it, its status will still arrive; otherwise send it again."
    ),
    "earlier_part_failed": (
        "Not sent: an earlier part of this long text failed, so the rest was held back "
        "rather than arrive with a gap."
    ),
    "retries_exhausted": "Not sent: WhatsApp could not be reached or was busy, after every retry.",
    "rejected": "Not sent: WhatsApp refused the message.",
    "invalid": "Not sent: the message breaks WhatsApp's limits.",
}


def explain(
    reason: str | None, error: PlatformError | None, details: dict[str, Any] | None = None
) -> str | None:
    """A sentence saying why the message failed or was not sent; None when nothing failed."""
    if reason is None and error is None:
        return None
    sentence = _REASONS.get(reason or "", "Not delivered.")
    problem = (details or {}).get("problem")
    if reason == "invalid" and isinstance(problem, str):
        sentence = f"{sentence[:-1]}: {problem}."
    if error is not None:
        said = " ".join(part for part in (error.title, error.message, error.details) if part)
        sentence += f" WhatsApp error {error.code}" + (f": {said}" if said else "") + "."
    return sentence


def failed(event: Event, outcome: OutboundOutcome) -> bool:
    """The event says the message did not reach (or will not reach) the customer."""
    if isinstance(event, MessageFailed | MessageSuppressed):
        return True
    return isinstance(event, DeliveryStatusChanged) and outcome.status is DeliveryStatus.FAILED
