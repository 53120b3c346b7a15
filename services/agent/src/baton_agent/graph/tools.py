"""The tools the model may call: their declarations, and what calling them does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from baton_agent.config import MediaCatalogue
from baton_agent.graph.choices import ChoicesError, as_text, choice_message
from baton_agent.graph.prompts import INTERVENTION_DONE
from baton_agent.graph.state import Output

RESPOND_WITH_MEDIA = "respond_with_media"
REQUEST_INTERVENTION = "request_intervention"
OFFER_CHOICES = "offer_choices"
CHOICES_SENT = (
    "The question and its choices were sent to the customer as your answer; their choice "
    "will come as their next message."
)


def declarations(catalogue: MediaCatalogue) -> list[dict[str, Any]]:
    """Tool declarations in the OpenAI function format that `bind_tools` accepts."""
    tools: list[dict[str, Any]] = [
        _function(
            REQUEST_INTERVENTION,
            "Hand the conversation to a person from the team: when the customer asks for a "
            "human, is upset, or needs something you cannot do.",
            {"reason": {"type": "string", "description": "Short reason, for the team."}},
            ["reason"],
        ),
        _function(
            OFFER_CHOICES,
            "Ask the customer a question they answer by tapping one of 2 to 10 choices "
            "(reply buttons, or a list when there are more than 3 or they are long). Use it "
            "when the answer is one of a few known options. It is your whole answer: the "
            "customer's choice comes back as their next message.",
            {
                "text": {"type": "string", "description": "The question, in their language."},
                "choices": {
                    "type": "array",
                    "description": "The answers to offer, short, in their language.",
                    "items": {"type": "string"},
                },
                "button": {
                    "type": "string",
                    "description": "Label of the button that opens a list (max 20 characters), "
                    "in their language, e.g. 'Choose'.",
                },
            },
            ["text", "choices"],
        ),
    ]
    if catalogue.items:
        tools.append(
            _function(
                RESPOND_WITH_MEDIA,
                "Send items of the media catalogue to the customer, in the given order.",
                {
                    "media_ids": {
                        "type": "array",
                        "description": "Ids of catalogue items to send.",
                        "items": {"type": "string", "enum": [i.id for i in catalogue.items]},
                    }
                },
                ["media_ids"],
            )
        )
    return tools


def _function(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


@dataclass
class ToolEffect:
    """What one tool call did.

    Attributes:
        result: the text the model reads as the tool's result.
        outputs: messages to send to the customer.
        handoff: reason for a handoff, when the tool asked for a person.
    """

    result: str
    outputs: list[Output] = field(default_factory=list)
    handoff: str | None = None


def call_tool(name: str, args: dict[str, Any], catalogue: MediaCatalogue) -> ToolEffect:
    """Run one tool call; bad arguments come back to the model as a readable error.

    The model's arguments are not checked against the declarations by anyone before this
    (a number where a list is declared reaches us as it is), so no shape is trusted."""
    try:
        return _call_tool(name, args, catalogue)
    except (TypeError, ValueError, AttributeError) as exc:
        return ToolEffect(f"Error: bad arguments for {name} ({exc}); call it again or answer.")


def _call_tool(name: str, args: dict[str, Any], catalogue: MediaCatalogue) -> ToolEffect:
    if name == REQUEST_INTERVENTION:
        reason = str(args.get("reason") or "the assistant asked for a person")
        return ToolEffect(INTERVENTION_DONE, handoff=reason)
    if name == RESPOND_WITH_MEDIA:
        return _respond_with_media(args.get("media_ids"), catalogue)
    if name == OFFER_CHOICES:
        return _offer_choices(args)
    return ToolEffect(f"Error: there is no tool named {name!r}.")


def _respond_with_media(media_ids: Any, catalogue: MediaCatalogue) -> ToolEffect:
    ids = [media_ids] if isinstance(media_ids, str) else list(media_ids or [])
    unknown = [str(i) for i in ids if catalogue.get(str(i)) is None]
    if not ids or unknown:
        valid = ", ".join(i.id for i in catalogue.items)
        return ToolEffect(f"Error: unknown media ids {unknown or ids}; valid ids: {valid}.")
    outputs: list[Output] = []
    for media_id in ids:
        item = catalogue.get(str(media_id))
        assert item is not None
        outputs.append(
            Output(kind=item.type.value, text=item.title, link=str(item.link), caption=item.caption)
        )
    return ToolEffect(f"Sent to the customer: {', '.join(map(str, ids))}.", outputs=outputs)


def _offer_choices(args: dict[str, Any]) -> ToolEffect:
    raw = args.get("choices")
    choices = [raw] if isinstance(raw, str) else [str(c) for c in raw or []]
    button = args.get("button")
    try:
        interactive = choice_message(
            str(args.get("text") or ""), choices, str(button) if button else None
        )
    except ChoicesError as exc:
        return ToolEffect(f"Error: {exc}. Call {OFFER_CHOICES} again, or answer in text.")
    output = Output(
        kind="interactive",
        text=as_text(interactive),
        link=None,
        caption=None,
        interactive=interactive,
    )
    return ToolEffect(CHOICES_SENT, outputs=[output])
