"""The status rule (invariant 7), table-driven."""

from __future__ import annotations

import pytest

from baton_sender.status import OUTCOME_UNKNOWN, Status, advances

S = Status


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        (S.CALLING, S.SENT, True),
        (S.SENT, S.DELIVERED, True),
        (S.SENT, S.READ, True),  # read without delivered
        (S.DELIVERED, S.READ, True),
        (S.DELIVERED, S.SENT, False),  # sent after delivered
        (S.READ, S.DELIVERED, False),
        (S.READ, S.READ, False),  # duplicate
        (S.READ, S.PLAYED, True),  # a voice note first played
        (S.DELIVERED, S.PLAYED, True),
        (S.PLAYED, S.READ, False),
        (S.PLAYED, S.FAILED, False),
        (S.SENT, S.FAILED, True),
        (S.READ, S.FAILED, False),
        (S.FAILED, S.READ, False),  # failed is final
        (S.SUPPRESSED, S.SENT, False),
        (S.CLAIMED, S.SUPPRESSED, True),
        (S.SENT, S.SUPPRESSED, False),
    ],
)
def test_status_only_moves_forward(current: Status, new: Status, expected: bool) -> None:
    assert advances(current, new) is expected


def test_unknown_outcome_failure_is_overruled_by_whatsapp() -> None:
    assert advances(S.FAILED, S.DELIVERED, reason=OUTCOME_UNKNOWN)
    # WhatsApp's own failure gives the cause the unknown outcome lacked
    assert advances(S.FAILED, S.FAILED, reason=OUTCOME_UNKNOWN)
    assert not advances(S.FAILED, S.FAILED, reason="rejected")
    assert not advances(S.FAILED, S.DELIVERED, reason="rejected")
