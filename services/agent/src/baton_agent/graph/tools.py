"""The tools the model may call: their declarations, and what calling them does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from baton_agent.config import MediaCatalogue
from baton_agent.graph.prompts import INTERVENTION_DONE
from baton_agent.graph.state import Output

RESPOND_WITH_MEDIA = "respond_with_media"
REQUEST_INTERVENTION = "request_intervention"


def declarations(catalogue: MediaCatalogue) -> list[dict[str, Any]]:
    """Tool declarations in the OpenAI function format that `bind_tools` accepts."""
    tools: list[dict[str, Any]] = [
        _function(
            REQUEST_INTERVENTION,
            "Hand the conversation to a person from the team: when the customer asks for a "
            "human, is upset, or needs something you cannot do.",
            {"reason": {"type": "string", "description": "Short reason, for the team."}},
            ["reason"],
        )
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
    """Run one tool call; bad arguments come back to the model as a readable error."""
    if name == REQUEST_INTERVENTION:
        reason = str(args.get("reason") or "the assistant asked for a person")
        return ToolEffect(INTERVENTION_DONE, handoff=reason)
    if name == RESPOND_WITH_MEDIA:
        return _respond_with_media(args.get("media_ids"), catalogue)
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
