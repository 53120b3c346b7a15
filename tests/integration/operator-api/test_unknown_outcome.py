"""A message the sender failed as `outcome_unknown` (it stopped mid-call and did not send it
again) is not final in the transcript: WhatsApp's later status replaces it. Otherwise the
operator reads "send it again" about a message the customer already has."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from baton_shared.events import (
    DeliveryStatus,
    DeliveryStatusChanged,
    MessageFailed,
    PlatformError,
)
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import drained, wait_until

from .conftest import NewOperator, ai_outcome, auth, customer_writes, new_wa_id

pytestmark = pytest.mark.integration


async def transcript_out(
    client: httpx.AsyncClient, bus: Bus, token: str, conversation_id: str
) -> dict[str, Any]:
    await wait_until(lambda: drained(bus.redis, bus.key(names.WA_OUTBOUND_RESULTS)))
    r = await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=auth(token))
    [out] = [m for m in r.json()["items"] if m["direction"] == "out"]
    return dict(out)


@pytest.mark.parametrize(
    ("later", "shown"),
    [
        (DeliveryStatus.DELIVERED, ("delivered", None, None)),
        (DeliveryStatus.SENT, ("sent", None, None)),
        (DeliveryStatus.FAILED, ("failed", None, 131026)),  # WhatsApp's own failure, its code
    ],
)
async def test_whatsapps_status_replaces_an_unknown_outcome(
    client: httpx.AsyncClient,
    bus: Bus,
    new_operator: NewOperator,
    later: DeliveryStatus,
    shown: tuple[str, str | None, int | None],
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    command_id = f"maybe-{uuid.uuid4()}"
    unknown = ai_outcome(
        wa_id,
        command_id,
        text="Your order ships today",
        status=DeliveryStatus.FAILED,
        reason="outcome_unknown",
    )
    await bus.publish(
        MessageFailed.create(unknown, producer="sender", conversation_id=conversation_id)
    )
    first = await transcript_out(client, bus, token, conversation_id)
    assert (first["status"], first["reason"]) == ("failed", "outcome_unknown")
    assert "send it again" in first["error"]

    error = PlatformError(code=131026, title="Message undeliverable") if later == "failed" else None
    status = ai_outcome(
        wa_id, command_id, status=later, wa_message_id=f"wamid.{command_id}", error=error,
        status_at=datetime.now(UTC),
    )  # fmt: skip
    await bus.publish(
        DeliveryStatusChanged.create(status, producer="sender", conversation_id=conversation_id)
    )
    out = await transcript_out(client, bus, token, conversation_id)
    assert (out["status"], out["reason"], out["error_code"]) == shown
    if later != DeliveryStatus.FAILED:
        assert out["error"] is None
