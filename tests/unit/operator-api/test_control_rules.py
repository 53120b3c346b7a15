"""The control rules: who may take over, hand back, resolve and write."""

from __future__ import annotations

import pytest

from baton_operator_api.auth import Role, hash_token, new_token
from baton_operator_api.control import (
    ControlState,
    decide_handback,
    decide_intervention,
    decide_reopen,
    decide_resolve,
    decide_takeover,
    may_write,
)
from baton_operator_api.errors import ControlConflictError, ForbiddenError
from baton_shared.events import Mode

AI = ControlState(Mode.AI, 3)
HELD = ControlState(Mode.OPERATOR, 4, "ann")


def test_takeover_bumps_the_epoch_and_sets_the_holder() -> None:
    assert decide_takeover(AI, "ann", Role.OPERATOR) == HELD


def test_own_takeover_is_a_no_op_and_another_holder_conflicts() -> None:
    assert decide_takeover(HELD, "ann", Role.OPERATOR) is None
    with pytest.raises(ControlConflictError):
        decide_takeover(HELD, "ben", Role.OPERATOR)
    with pytest.raises(ControlConflictError):
        decide_takeover(HELD, "ben", Role.ADMIN)  # admins too, unless they force it


def test_force_is_for_admins_only() -> None:
    with pytest.raises(ForbiddenError):
        decide_takeover(HELD, "ben", Role.OPERATOR, force=True)
    assert decide_takeover(HELD, "root", Role.ADMIN, force=True) == ControlState(
        Mode.OPERATOR, 5, "root"
    )


def test_handback_and_resolve() -> None:
    assert decide_handback(AI, "ann", Role.OPERATOR) is None
    assert decide_handback(HELD, "ann", Role.OPERATOR) == ControlState(Mode.AI, 5)
    with pytest.raises(ControlConflictError):
        decide_handback(HELD, "ben", Role.OPERATOR)
    assert decide_handback(HELD, "root", Role.ADMIN) == ControlState(Mode.AI, 5)
    assert decide_resolve(HELD, "ann", Role.OPERATOR) == ControlState(Mode.RESOLVED, 5)
    assert decide_resolve(ControlState(Mode.RESOLVED, 1), "ann", Role.OPERATOR) is None


def test_intervention_and_reopen() -> None:
    assert decide_intervention(AI, AI.epoch + 1) == ControlState(Mode.PENDING_HUMAN, 4)
    assert decide_intervention(HELD, HELD.epoch + 1) is None
    # Asked before a takeover and handback that have happened since: stale.
    assert decide_intervention(AI, AI.epoch) is None
    assert decide_intervention(AI, AI.epoch - 2) is None
    assert decide_reopen(ControlState(Mode.RESOLVED, 7)) == ControlState(Mode.AI, 7)
    assert decide_reopen(HELD) is None


def test_only_the_holder_or_an_admin_may_write() -> None:
    assert may_write(HELD, "ann", Role.OPERATOR)
    assert not may_write(HELD, "ben", Role.OPERATOR)
    assert not may_write(AI, "ann", Role.OPERATOR)
    assert may_write(AI, "root", Role.ADMIN)


def test_tokens_are_random_and_stored_hashed() -> None:
    a, b = new_token(), new_token()
    assert a != b
    assert len(a) > 40
    assert hash_token(a) != a
    assert len(hash_token(a)) == 64
