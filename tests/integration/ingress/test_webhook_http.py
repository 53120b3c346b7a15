"""`GET/POST /webhook`: verification, signature, size, JSON, Redis outage — never a 500."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from prometheus_client import REGISTRY

from baton_ingress.api.routes import webhook as webhook_route
from baton_ingress.api.routes.webhook import webhook_event_id
from baton_ingress.metrics import OUTCOME_STATUS
from baton_ingress.signature import sign
from baton_shared.events import WebhookReceived, parse_event
from baton_shared.streams import names

pytestmark = pytest.mark.integration

VERIFY = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "test-verify-token"}  # fmt: skip


async def webhook_entries(harness: Any) -> list[dict[str, str]]:
    key = harness.bus.key(names.WA_WEBHOOKS)
    return [fields for _, fields in await harness.bus.redis.xrange(key)]


async def test_verification_echoes_the_challenge(harness: Any) -> None:
    async with harness.client(run_worker=False) as client:
        ok = await client.get("/webhook", params=VERIFY)
        assert (ok.status_code, ok.text) == (200, "1158201444")
        assert ok.headers["content-type"].startswith("text/plain")
        for bad in (
            {**VERIFY, "hub.verify_token": "wrong"},
            {**VERIFY, "hub.mode": "unsubscribe"},
            {"hub.challenge": "1"},
        ):
            assert (await client.get("/webhook", params=bad)).status_code == 403


async def test_signed_body_is_appended_raw_and_answered_200(harness: Any) -> None:
    body = harness.body("non_ascii_escaped")
    async with harness.client(run_worker=False) as client:
        response = await harness.post(client, body)
    assert response.status_code == 200
    [entry] = await webhook_entries(harness)
    event = parse_event(entry["event_type"], int(entry["schema_version"]), entry["body"])
    assert isinstance(event, WebhookReceived)
    assert event.payload.body.encode() == body  # byte for byte, escapes included
    assert event.payload.signature == sign(body, "test-app-secret")
    assert event.event_id == webhook_event_id(body)


async def test_a_rotated_out_secret_still_verifies(harness: Any) -> None:
    async with harness.client(run_worker=False) as client:
        response = await harness.post(client, harness.body("text_reply"), secret="old-secret")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, 403), ({"X-Hub-Signature-256": "garbage"}, 403)],
)  # fmt: skip
async def test_unsigned_or_badly_signed_is_refused(
    harness: Any, headers: dict[str, str], status: int
) -> None:
    async with harness.client(run_worker=False) as client:
        response = await client.post(
            "/webhook", content=harness.body("text_reply"), headers=headers
        )
    assert response.status_code == status
    assert response.json()["detail"]
    assert await webhook_entries(harness) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2, 3]", "must be a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"", "not valid JSON"),
    ],
)
async def test_signed_non_json_is_400_with_a_reason(harness: Any, body: bytes, reason: str) -> None:
    async with harness.client(run_worker=False) as client:
        response = await harness.post(client, body)
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert await webhook_entries(harness) == []


async def test_oversized_body_is_413(harness: Any) -> None:
    settings = harness.settings(INGRESS_MAX_BODY_BYTES=2048)
    big = b'{"entry": [], "pad": "' + b"x" * 4096 + b'"}'
    async with harness.client(settings, run_worker=False) as client:
        assert (await harness.post(client, big)).status_code == 413

        async def chunks() -> Any:  # no Content-Length: the limit holds while streaming
            for start in range(0, len(big), 256):
                yield big[start : start + 256]

        headers = {"X-Hub-Signature-256": sign(big, "test-app-secret")}
        streamed = await client.post("/webhook", content=chunks(), headers=headers)
        assert streamed.status_code == 413
        assert (await harness.post(client, harness.body("text_reply"))).status_code == 200
    assert len(await webhook_entries(harness)) == 1


async def test_redis_down_is_503_and_nothing_is_written(harness: Any) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        settings = harness.settings(REDIS_URL=f"redis://127.0.0.1:{port}/0")
        body = harness.body("text_reply")
        async with harness.client(settings) as client:
            response = await harness.post(client, body)
    assert response.status_code == 503
    assert "retry" in response.json()["detail"]
    assert await webhook_entries(harness) == []
    assert await harness.archived(body) == 0


async def test_redis_that_never_answers_is_503_within_the_publish_timeout(harness: Any) -> None:
    with socket.socket() as silent:  # listening, never accepting: connects, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = harness.settings(
            REDIS_URL=f"redis://127.0.0.1:{port}/0", INGRESS_PUBLISH_TIMEOUT_SECONDS=0.3
        )
        async with harness.client(settings, run_worker=False) as client:
            answers = await asyncio.gather(
                *(
                    harness.post(client, harness.body(name))
                    for name in ("text_reply", "image_caption")
                )
            )
    assert [a.status_code for a in answers] == [503, 503]
    assert all("retry" in a.json()["detail"] for a in answers)


async def test_an_unexpected_failure_is_503_not_500(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> dict[str, str]:
        raise RuntimeError("a bug on the request path")

    monkeypatch.setattr(webhook_route, "webhook_received_fields", broken)
    before = _count("unavailable")
    async with harness.client(run_worker=False) as client:
        response = await harness.post(client, harness.body("text_reply"))
    assert response.status_code == 503  # WhatsApp retries: the body is not lost
    assert "retry" in response.json()["detail"]
    assert _count("unavailable") == before + 1
    assert await webhook_entries(harness) == []


def _count(outcome: str) -> float:
    status = OUTCOME_STATUS[outcome]
    labels = {"outcome": outcome, "status": str(status)}
    return REGISTRY.get_sample_value("baton_ingress_webhooks_total", labels) or 0.0


async def test_every_answer_is_counted_by_outcome(harness: Any) -> None:
    body = harness.body("text_reply")
    before = {outcome: _count(outcome) for outcome in OUTCOME_STATUS}
    async with harness.client(run_worker=False, settings=harness.settings(INGRESS_MAX_BODY_BYTES=4096)) as client:  # fmt: skip
        assert (await harness.post(client, body)).status_code == 200
        assert (await client.post("/webhook", content=body)).status_code == 401
        bad = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
        assert (await client.post("/webhook", content=body, headers=bad)).status_code == 403
        assert (await harness.post(client, b"[1, 2]")).status_code == 400
        assert (await harness.post(client, b"\xff{}")).status_code == 400
        assert (await harness.post(client, b"{" + b" " * 5000 + b"}")).status_code == 413
    counted = {outcome: _count(outcome) - before[outcome] for outcome in OUTCOME_STATUS}
    assert counted == {
        "ok": 1,
        "unsigned": 1,
        "bad_signature": 1,
        "not_json": 2,
        "too_large": 1,
        "unavailable": 0,
    }


async def test_the_webhook_event_continues_an_incoming_traceparent(harness: Any) -> None:
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    body = harness.body("text_reply")
    headers = {"X-Hub-Signature-256": sign(body, "test-app-secret"), "traceparent": incoming}
    async with harness.client(run_worker=False) as client:
        assert (await client.post("/webhook", content=body, headers=headers)).status_code == 200
    [entry] = await webhook_entries(harness)
    event = parse_event(entry["event_type"], int(entry["schema_version"]), entry["body"])
    _, trace_id, span_id, _ = event.traceparent.split("-")
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"  # same trace ...
    assert span_id != "b7ad6b7169203331"  # ... under the request's own span
