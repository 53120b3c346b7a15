"""The rules of conversation control: who may take over, hand back and resolve, and the
state each action leads to. Pure functions; the caller holds the row lock."""

from __future__ import annotations

from dataclasses import dataclass, replace

from baton_operator_api.auth import Role
from baton_operator_api.errors import ControlConflictError, ForbiddenError
from baton_shared.events import Mode


@dataclass(frozen=True, slots=True)
class ControlState:
    """Who holds a conversation.

    Attributes:
        mode: ai, operator, pending_human or resolved.
        epoch: bumped on every change, never reused.
        operator: the holding operator's name, in operator mode.
    """

    mode: Mode
    epoch: int
    operator: str | None = None

    def moved_to(self, mode: Mode, operator: str | None = None) -> ControlState:
        """The next state: a new mode and holder under the next epoch."""
        return replace(self, mode=mode, operator=operator, epoch=self.epoch + 1)


def _held_by_other(state: ControlState, actor: str) -> bool:
    return state.mode == Mode.OPERATOR and state.operator not in (None, actor)


def decide_takeover(
    state: ControlState, actor: str, role: Role, *, force: bool = False
) -> ControlState | None:
    """The state after `actor` takes over, or None when they already hold it (no-op)."""
    if force and role != Role.ADMIN:
        raise ForbiddenError("only an admin may force a takeover")
    if state.mode == Mode.OPERATOR and state.operator == actor:
        return None
    if _held_by_other(state, actor) and not force:
        raise ControlConflictError(
            f"conversation is held by operator {state.operator!r}; an admin may force it"
        )
    return state.moved_to(Mode.OPERATOR, actor)


def decide_handback(state: ControlState, actor: str, role: Role) -> ControlState | None:
    """The state after handing back to the AI, or None when the AI already holds it."""
    if state.mode == Mode.AI:
        return None
    if _held_by_other(state, actor) and role != Role.ADMIN:
        raise ControlConflictError(f"conversation is held by operator {state.operator!r}")
    return state.moved_to(Mode.AI)


def decide_resolve(state: ControlState, actor: str, role: Role) -> ControlState | None:
    """The state after resolving, or None when it is already resolved."""
    if state.mode == Mode.RESOLVED:
        return None
    if _held_by_other(state, actor) and role != Role.ADMIN:
        raise ControlConflictError(f"conversation is held by operator {state.operator!r}")
    return state.moved_to(Mode.RESOLVED)


def decide_intervention(state: ControlState, requested_epoch: int) -> ControlState | None:
    """The state after the AI asks for a human; an operator already holding it keeps it.

    The AI asks under the epoch after the one its turn ran under (`requested_epoch`): a
    request not newer than the current epoch comes from before a takeover, handback or
    resolve that has happened since, and is stale (applied late, it would fence the AI again
    right after a handback, or queue a resolved conversation)."""
    if state.mode in (Mode.OPERATOR, Mode.PENDING_HUMAN) or requested_epoch <= state.epoch:
        return None
    return state.moved_to(Mode.PENDING_HUMAN)


def decide_reopen(state: ControlState) -> ControlState | None:
    """A customer message reopens a resolved conversation to the AI, under the same epoch.

    Resolved already means "nobody holds it, the AI answers" (the fence shows `ai`), so this
    is a read-model change, not a control change: bumping the epoch here would fence the AI's
    answer to the very message that reopened the conversation.
    """
    return replace(state, mode=Mode.AI) if state.mode == Mode.RESOLVED else None


def may_write(state: ControlState, actor: str, role: Role) -> bool:
    """Only the holding operator, or an admin, may message the customer."""
    return role == Role.ADMIN or (state.mode == Mode.OPERATOR and state.operator == actor)
