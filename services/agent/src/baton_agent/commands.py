"""A turn's outputs as events: outbound commands, intervention, and the turn's completion."""

from __future__ import annotations

from baton_agent.context import PRODUCER
from baton_agent.graph.state import Output
from baton_agent.runner import TurnRun
from baton_shared.events import (
    Author,
    ControlChange,
    Event,
    InterventionRequested,
    MessageRequested,
    Mode,
    OutboundCommand,
    OutboundKind,
    OutboundMedia,
    TurnCompleted,
    TurnOutcome,
    TurnReady,
    TurnResult,
    command_id_for,
)


def outbound_command(
    turn: TurnReady, output: Output, position: int, epoch: int, author: Author = Author.AI
) -> OutboundCommand:
    """One message of the turn; its command id depends only on the turn and the position."""
    t = turn.payload
    common = {
        "command_id": command_id_for(str(t.turn_id), position),
        "phone_number_id": t.phone_number_id,
        "to": t.wa_id,
        "author": author,
        "control_epoch": epoch,
        "turn_id": t.turn_id,
    }
    if output["kind"] == "text":
        return OutboundCommand(kind=OutboundKind.TEXT, text=output["text"], **common)
    if output["kind"] == "interactive":
        return OutboundCommand(
            kind=OutboundKind.INTERACTIVE,
            text=output["text"],
            interactive=output.get("interactive"),
            **common,
        )
    media = OutboundMedia(link=output["link"], caption=output["caption"])
    return OutboundCommand(
        kind=OutboundKind(output["kind"]), text=output["text"], media=media, **common
    )


def typing_command(turn: TurnReady, epoch: int) -> OutboundCommand:
    """Mark the turn's latest customer message read and show the typing indicator (one call).

    Its command id depends only on the turn, so a repeated turn repeats it harmlessly (the
    sender drops the repeat); as an AI command it is fenced like the answer."""
    t = turn.payload
    return OutboundCommand(
        command_id=command_id_for(f"{t.turn_id}:typing", 0),
        phone_number_id=t.phone_number_id,
        to=t.wa_id,
        author=Author.AI,
        kind=OutboundKind.TYPING,
        reply_to=t.messages[-1].message_id,
        control_epoch=epoch,
        turn_id=t.turn_id,
    )


def outcome_of(run: TurnRun) -> TurnOutcome:
    """How the turn ended; outside `ai` mode it was only recorded."""
    if run.control.mode is not Mode.AI:
        return TurnOutcome.RECORDED
    if run.failed:
        return TurnOutcome.FAILED
    return TurnOutcome.HANDED_OFF if run.handoff else TurnOutcome.ANSWERED


def turn_events(turn: TurnReady, run: TurnRun) -> list[Event]:
    """Commands, then the intervention (epoch + 1), then TurnCompleted: in outbox order; all
    under the control the turn ran under."""
    t = turn.payload
    control = run.control
    events: list[Event] = []
    outputs = run.outputs
    # A turn that hands off tells the customer a person is coming. That notice must reach
    # them even though the conversation leaves `ai` mode at once, so it is not fenced as an
    # AI answer would be: it goes out as a system message.
    author = Author.SYSTEM if run.handoff else Author.AI
    for position, output in enumerate(outputs):
        command = outbound_command(turn, output, position, control.epoch, author)
        events.append(MessageRequested.create(command, producer=PRODUCER, cause=turn))
    if run.handoff:
        change = ControlChange(
            phone_number_id=t.phone_number_id,
            wa_id=t.wa_id,
            mode=Mode.PENDING_HUMAN,
            epoch=control.epoch + 1,
            reason=run.handoff,
        )
        events.append(InterventionRequested.create(change, producer=PRODUCER, cause=turn))
    result = TurnResult(
        turn_id=t.turn_id,
        phone_number_id=t.phone_number_id,
        wa_id=t.wa_id,
        outcome=outcome_of(run),
        outputs=len(outputs),
    )
    events.append(TurnCompleted.create(result, producer=PRODUCER, cause=turn))
    return events
