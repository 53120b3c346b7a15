"""The life of an outbound message, and the rule that its status only moves forward.

    queued -> claimed -> calling -> sent -> delivered -> read -> played (voice messages)
                 \\          \\        \\         \\
                  +-> suppressed / failed (final)

`queued`, `claimed` and `calling` belong to the sender; `sent`, `delivered`, `read`, `played`
and `failed` come from WhatsApp (the send call's answer, then status webhooks, in any order).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where one outbound message is."""

    QUEUED = "queued"
    CLAIMED = "claimed"
    CALLING = "calling"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


PENDING = (Status.QUEUED, Status.CLAIMED, Status.CALLING)
FINAL = (Status.FAILED, Status.SUPPRESSED)
_RANK = {
    Status.QUEUED: 0,
    Status.CLAIMED: 1,
    Status.CALLING: 2,
    Status.SENT: 3,
    Status.DELIVERED: 4,
    Status.READ: 5,
    Status.PLAYED: 6,
}

# A failure the sender declared because a crash left the call's outcome unknown: WhatsApp's
# own statuses for the message (matched by `biz_opaque_callback_data`) may still correct it.
OUTCOME_UNKNOWN = "outcome_unknown"


def advances(current: Status, new: Status, *, reason: str | None = None) -> bool:
    """True when a message in `current` may move to `new` (statuses only move forward).

    `read` may skip `delivered`; a late `sent` or `delivered` after `read` changes nothing;
    `failed` and `suppressed` are final, except a failure with reason `outcome_unknown`, which
    WhatsApp's own statuses overrule: sent/delivered/read, and its own `failed` with the
    cause. `failed` cannot follow delivery.
    """
    if current in FINAL:
        unknown = current is Status.FAILED and reason == OUTCOME_UNKNOWN
        return unknown and (new in _RANK or new is Status.FAILED)
    if new is Status.FAILED:
        return current not in (Status.DELIVERED, Status.READ, Status.PLAYED)
    if new is Status.SUPPRESSED:
        return current in PENDING
    return _RANK[new] > _RANK[current]
