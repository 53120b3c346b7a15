"""AGENT_NUMBERS_FILE: a business number with its own files answers as its own business
(prompt, profile, media catalogue, apology); every other number as the default one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from baton_agent.settings import AgentSettings
from baton_shared.events import OutboundKind, TurnReady
from baton_shared.streams.bus import Bus

from .conftest import Gemini, RunningAgent, make_turn
from .test_turns import finish, sent

pytestmark = pytest.mark.integration

TEA = "200300400"
TEA_LINK = "https://tea.example.com/oolong.jpg"


@pytest.fixture
def settings(settings: AgentSettings, tmp_path: Path) -> AgentSettings:
    """The test settings, with a second business number that has its own profile and
    catalogue (and the default prompt)."""
    (tmp_path / "profile.yaml").write_text(
        "name: Baton Tea House\ntone: calm\napology: The tea house will write to you soon.\n"
    )
    (tmp_path / "media.yaml").write_text(
        "items:\n"
        "  - {id: oolong, title: Oolong, description: Our oolong, type: image,"
        f" link: '{TEA_LINK}'}}\n"
    )
    numbers = tmp_path / "numbers.yaml"
    numbers.write_text(
        f"numbers:\n  '{TEA}':\n"
        "    business_profile_file: profile.yaml\n"
        "    media_catalogue_file: media.yaml\n"
    )
    return settings.model_copy(update={"numbers_file": numbers})


async def from_both(bus: Bus, to_tea: str, to_coffee: str) -> tuple[TurnReady, TurnReady]:
    """A finished turn to the tea number, then one to the default (coffee) number."""
    tea = make_turn(to_tea, phone_number_id=TEA)
    coffee = make_turn(to_coffee)
    await finish(bus, tea)
    await finish(bus, coffee)
    return tea, coffee


def system_text(request: dict[str, Any]) -> str:
    """The system instruction of a recorded Gemini request."""
    return str(request["body"]["systemInstruction"])


async def test_each_number_answers_as_its_own_business(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    tea, _ = await from_both(bus, "hello tea", "hello coffee")

    by_text = {str(r["body"]["contents"]): system_text(r) for r in await gemini.requests()}
    [tea_system] = [s for contents, s in by_text.items() if "hello tea" in contents]
    [coffee_system] = [s for contents, s in by_text.items() if "hello coffee" in contents]
    assert "Baton Tea House" in tea_system
    assert "Baton Coffee Roasters" not in tea_system
    assert "Baton Coffee Roasters" in coffee_system
    assert "Baton Tea House" not in coffee_system
    [answer] = await sent(bus, tea)
    assert answer.payload.phone_number_id == TEA


async def test_each_number_sends_from_its_own_catalogue(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    tea, coffee = await from_both(bus, "please send a sample", "please send a sample")

    [tea_media, _] = await sent(bus, tea)
    [coffee_media, _] = await sent(bus, coffee)
    assert tea_media.payload.kind is OutboundKind.IMAGE
    assert tea_media.payload.media is not None
    assert str(tea_media.payload.media.link) == TEA_LINK
    assert coffee_media.payload.media is not None
    assert str(coffee_media.payload.media.link) != TEA_LINK


async def test_a_number_apologises_in_its_own_words(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    await gemini.fault(status=500, count=3)  # every try of the one turn fails
    tea = make_turn("hello?", phone_number_id=TEA)
    await finish(bus, tea)
    [apology] = await sent(bus, tea)
    assert apology.payload.text == "The tea house will write to you soon."
