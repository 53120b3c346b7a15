"""Conversation events: turns for the agent (`conv.turns`, `conv.turns.done`) and control
changes between the AI and human operators (`conv.control`)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from baton_shared.events.envelope import Event, Payload, or_unknown
from baton_shared.events.inbound import InboundMessage
from baton_shared.streams import names


class TurnCloseReason(StrEnum):
    """Why the buffer closed a burst of messages into a turn."""

    QUIET = "quiet"
    MAX_TIME = "max_time"
    MAX_MESSAGES = "max_messages"
    UNKNOWN = "unknown"


class Turn(Payload):
    """A burst of customer messages released to the agent as one turn.

    Attributes:
        turn_id: unique id of the turn; outbound command ids derive from it.
        phone_number_id: business number of the conversation.
        wa_id: customer of the conversation (wa_id, or business-scoped user id).
        sequence: position of the turn in its conversation, from 1.
        messages: the messages, ordered by WhatsApp timestamp then arrival.
        closed_by: the rule that closed the turn.
    """

    turn_id: uuid.UUID
    phone_number_id: str
    wa_id: str
    sequence: int
    messages: list[InboundMessage]
    closed_by: Annotated[TurnCloseReason, or_unknown(TurnCloseReason)]


class TurnReady(Event):
    """The buffer released a turn for the agent (at most one in flight per conversation)."""

    stream: ClassVar[str] = names.CONV_TURNS
    event_type: Literal["conversation.turn_ready"] = "conversation.turn_ready"
    schema_version: Literal[1] = 1
    payload: Turn


class TurnOutcome(StrEnum):
    """How the agent finished a turn."""

    ANSWERED = "answered"
    RECORDED = "recorded"
    HANDED_OFF = "handed_off"
    FAILED = "failed"
    UNKNOWN = "unknown"


class TurnResult(Payload):
    """The agent's report on a turn.

    Attributes:
        turn_id: the turn.
        phone_number_id: business number of the conversation.
        wa_id: customer of the conversation.
        outcome: answered, only recorded (a human holds the conversation), handed off, failed.
        outputs: number of outbound commands the turn produced.
    """

    turn_id: uuid.UUID
    phone_number_id: str
    wa_id: str
    outcome: Annotated[TurnOutcome, or_unknown(TurnOutcome)]
    outputs: int = 0


class TurnCompleted(Event):
    """The agent finished a turn and published its outputs; the buffer may release the next."""

    stream: ClassVar[str] = names.CONV_TURNS_DONE
    event_type: Literal["conversation.turn_completed"] = "conversation.turn_completed"
    schema_version: Literal[1] = 1
    payload: TurnResult


class Mode(StrEnum):
    """Who answers the customer."""

    AI = "ai"
    OPERATOR = "operator"
    PENDING_HUMAN = "pending_human"
    RESOLVED = "resolved"
    UNKNOWN = "unknown"


class ControlChange(Payload):
    """A change of who holds a conversation.

    Attributes:
        phone_number_id: business number of the conversation.
        wa_id: customer of the conversation.
        mode: the mode after the change.
        epoch: control epoch after the change; bumped on every change, never reused.
        operator: the operator holding the conversation, if any.
        reason: why (takeover reason, intervention reason, handback note).
    """

    phone_number_id: str
    wa_id: str
    mode: Annotated[Mode, or_unknown(Mode)]
    epoch: int
    operator: str | None = None
    reason: str | None = None


class ConversationTakenOver(Event):
    """An operator took the conversation over; the AI must stay silent until handback."""

    stream: ClassVar[str] = names.CONV_CONTROL
    event_type: Literal["conversation.taken_over"] = "conversation.taken_over"
    schema_version: Literal[1] = 1
    payload: ControlChange


class ConversationHandedBack(Event):
    """The operator handed the conversation back to the AI."""

    stream: ClassVar[str] = names.CONV_CONTROL
    event_type: Literal["conversation.handed_back"] = "conversation.handed_back"
    schema_version: Literal[1] = 1
    payload: ControlChange


class InterventionRequested(Event):
    """The AI asked for a human; the conversation waits in `pending_human`."""

    stream: ClassVar[str] = names.CONV_CONTROL
    event_type: Literal["conversation.intervention_requested"] = (
        "conversation.intervention_requested"
    )
    schema_version: Literal[1] = 1
    payload: ControlChange


class ConversationAwaitingHuman(Event):
    """The operator-api accepted the AI's request for a person: the conversation waits in
    `pending_human` under this epoch. A request it ignores (an operator already holds the
    conversation, or the request is older than a later change) has no such event."""

    stream: ClassVar[str] = names.CONV_CONTROL
    event_type: Literal["conversation.awaiting_human"] = "conversation.awaiting_human"
    schema_version: Literal[1] = 1
    payload: ControlChange


class ConversationResolved(Event):
    """An operator marked the conversation resolved; the next customer message reopens it."""

    stream: ClassVar[str] = names.CONV_CONTROL
    event_type: Literal["conversation.resolved"] = "conversation.resolved"
    schema_version: Literal[1] = 1
    payload: ControlChange


class ConversationReopened(Event):
    """The customer wrote to a resolved conversation: it is open again, the AI answering, under
    the same epoch (resolved already meant nobody holds it, so nothing the AI sends is fenced)."""

    stream: ClassVar[str] = names.CONV_CONTROL
    event_type: Literal["conversation.reopened"] = "conversation.reopened"
    schema_version: Literal[1] = 1
    payload: ControlChange
