"""Tool calls: what they send, and readable errors for bad arguments."""

from __future__ import annotations

from baton_agent.config import load_config
from baton_agent.graph import tools
from baton_agent.settings import AgentSettings

CATALOGUE = load_config(AgentSettings(database_url="postgresql://x/y", baton_env="test")).catalogue


def test_declarations_offer_catalogue_ids_as_enum() -> None:
    [intervention, choices, media] = tools.declarations(CATALOGUE)
    assert intervention["function"]["name"] == "request_intervention"
    assert choices["function"]["name"] == "offer_choices"
    items = media["function"]["parameters"]["properties"]["media_ids"]["items"]
    assert items["enum"] == ["sample-1", "price-list"]


def test_media_call_sends_items_in_order() -> None:
    effect = tools.call_tool(
        "respond_with_media", {"media_ids": ["price-list", "sample-1"]}, CATALOGUE
    )
    assert [o["kind"] for o in effect.outputs] == ["document", "image"]
    assert effect.outputs[0]["link"] == "https://example.com/media/price-list.pdf"
    assert effect.handoff is None


def test_unknown_media_id_is_an_error_for_the_model() -> None:
    effect = tools.call_tool("respond_with_media", {"media_ids": ["nope"]}, CATALOGUE)
    assert effect.outputs == []
    assert "unknown media ids ['nope']" in effect.result


def test_intervention_hands_off_and_asks_for_a_notice() -> None:
    effect = tools.call_tool("request_intervention", {"reason": "angry"}, CATALOGUE)
    assert effect.handoff == "angry"
    assert "in the language they wrote in" in effect.result


def test_unknown_tool() -> None:
    assert "no tool named" in tools.call_tool("delete_all", {}, CATALOGUE).result
