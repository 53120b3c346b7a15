"""The state of one conversation's thread, checkpointed in PostgreSQL after every step."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


class Output(TypedDict):
    """One message the turn sends to the customer, in order.

    Attributes:
        kind: `text`, `interactive`, or the media type (image, video, audio, document).
        text: the text, the media's title for media, the question and its answers for
            interactive messages.
        link: the media's link.
        caption: the media's caption.
        interactive: the WhatsApp `interactive` object (buttons or a list).
    """

    kind: str
    text: str
    link: str | None
    caption: str | None
    interactive: NotRequired[dict[str, Any]]


class AgentState(TypedDict, total=False):
    """What the graph keeps per conversation; everything except `messages` is per turn.

    Attributes:
        messages: the whole conversation: customer turns, AI answers, tool calls and results,
            operator messages. Messages with the same id replace each other (idempotent).
        turn_id: the turn being (or last) processed.
        phone_number_id: the business number of the conversation (its persona answers).
        mode: the conversation mode the turn was processed in.
        control: the control state (mode and epoch) the turn was processed under, as the
            agent knew it: a repeat of the turn after a crash commits under it, not under the
            control of the moment of the repeat.
        outputs: the messages this turn sends, in order.
        handoff: why the AI handed the conversation to a person in this turn, if it did.
        failed: the model could not answer; the customer gets an apology.
        model_calls: model calls made in this turn.
        started_at: when the turn's run started (epoch seconds): its model work ends
            `AGENT_TURN_TIMEOUT_SECONDS` later.
        limited: the conversation has had its AI answers for the hour: this turn goes to a
            person without a model call.
    """

    messages: Annotated[list[AnyMessage], add_messages]
    turn_id: str
    phone_number_id: str
    mode: Literal["ai", "operator", "pending_human"]
    control: dict[str, Any]
    outputs: list[Output]
    handoff: str | None
    failed: bool
    model_calls: int
    started_at: float
    limited: bool
