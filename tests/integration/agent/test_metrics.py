"""The agent's domain metrics, read from the default Prometheus registry."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from baton_shared.events import TurnOutcome
from baton_shared.streams.bus import Bus

from .conftest import Gemini, RunningAgent, make_turn
from .test_turns import finish

pytestmark = pytest.mark.integration


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_turn_with_a_tool_call_is_counted(
    agent: RunningAgent, bus: Bus, gemini: Gemini
) -> None:
    before = {
        "answered": value("baton_agent_turns_total", outcome="answered"),
        "model": value("baton_agent_model_seconds_count"),
        "input": value("baton_agent_tokens_total", kind="input"),
        "output": value("baton_agent_tokens_total", kind="output"),
        "tool": value("baton_agent_tool_calls_total", tool="respond_with_media"),
        "error": value("baton_agent_errors_total", reason="model_error"),
    }
    await gemini.fault(status=500, count=1)  # the first try fails, the retry answers

    completed = await finish(bus, make_turn("Could you send me a sample picture?"))

    assert completed.payload.outcome is TurnOutcome.ANSWERED
    assert value("baton_agent_turns_total", outcome="answered") == before["answered"] + 1
    calls = len(await gemini.requests())  # the failed try, the tool call, the answer
    assert value("baton_agent_model_seconds_count") == before["model"] + calls
    assert value("baton_agent_tokens_total", kind="input") > before["input"]
    assert value("baton_agent_tokens_total", kind="output") > before["output"]
    assert value("baton_agent_tool_calls_total", tool="respond_with_media") == before["tool"] + 1
    assert value("baton_agent_errors_total", reason="model_error") == before["error"] + 1

    transport = httpx.ASGITransport(app=agent.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        exposed = (await client.get("/metrics/")).text
    assert "baton_agent_turns_total" in exposed
