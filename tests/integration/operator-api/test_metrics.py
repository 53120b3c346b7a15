"""The operator-api's domain metrics, read from the default Prometheus registry."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from baton_operator_api.context import ServiceContext
from baton_operator_api.control import ControlState
from baton_shared.events import ControlChange, InterventionRequested, Mode
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, NewOperator, auth, customer_writes, new_wa_id

pytestmark = pytest.mark.integration


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_actions_and_the_handoff_wait_are_counted(
    client: httpx.AsyncClient,
    bus: Bus,
    ctx: ServiceContext,
    new_operator: NewOperator,
    admin_token: str,
) -> None:
    actions = ["takeover", "force_takeover", "message", "handback", "resolve"]
    before = {a: value("baton_operator_actions_total", action=a) for a in actions}
    waits = value("baton_operator_handoff_wait_seconds_count")
    token = await new_operator()
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    change = ControlChange(
        phone_number_id=PHONE_NUMBER_ID, wa_id=wa_id, mode=Mode.PENDING_HUMAN, epoch=1
    )
    await bus.publish(
        InterventionRequested.create(change, producer="agent", conversation_id=conversation_id)
    )

    async def pending() -> bool:
        state = await ctx.fence.read(conversation_id)
        return state == ControlState(Mode.PENDING_HUMAN, 1)

    await wait_until(pending, what="pending_human")

    async def post(path: str, body: dict[str, object], who: str = token) -> None:
        r = await client.post(path, json=body, headers=auth(who))
        assert r.status_code in (200, 202), r.text

    await post("/api/v1/takeover", {"wa_id": wa_id})
    assert value("baton_operator_handoff_wait_seconds_count") == waits + 1
    await post("/api/v1/operator-message", {"wa_id": wa_id, "text": "Hi, Ana here."})
    await post("/api/v1/takeover", {"wa_id": wa_id, "force": True}, who=admin_token)
    await post("/api/v1/handback", {"wa_id": wa_id}, who=admin_token)
    await post(f"/api/v1/conversations/{conversation_id}/resolve", {})

    for action in actions:
        assert value("baton_operator_actions_total", action=action) == before[action] + 1, action
    assert value("baton_operator_handoff_wait_seconds_count") == waits + 1  # only from pending

    exposed = (await client.get("/metrics/")).text
    assert "baton_operator_actions_total" in exposed
