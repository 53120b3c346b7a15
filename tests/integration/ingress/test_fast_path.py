"""`POST /webhook` skips the app's inner layers but keeps its span and latency metric."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from baton_ingress.signature import sign
from baton_shared.events import WebhookReceived, parse_event
from baton_shared.events.envelope import trace_id_of
from baton_shared.streams import names

from .conftest import SECRET

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def webhook_latency_count() -> float:
    labels = {"method": "POST", "route": "/webhook", "status": "200"}
    return REGISTRY.get_sample_value("baton_http_request_seconds_count", labels) or 0.0


async def test_the_webhook_continues_the_callers_trace_and_is_timed(harness: Any) -> None:
    body = harness.body("text_reply")
    before = webhook_latency_count()
    async with harness.client(run_worker=False) as client:
        response = await client.post(
            "/webhook",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign(body, SECRET),
                "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
            },
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert (await client.get("/health")).status_code == 200  # the rest of the app
    assert webhook_latency_count() == before + 1
    [(_, fields)] = await harness.bus.redis.xrange(harness.bus.key(names.WA_WEBHOOKS))
    event = parse_event(fields["event_type"], int(fields["schema_version"]), fields["body"])
    assert isinstance(event, WebhookReceived)
    assert trace_id_of(event.traceparent) == TRACE_ID
