"""Invariant 8 on `POST /webhook` (never a 500, whatever arrives) and the batched appender."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from redis.exceptions import RedisError

from baton_ingress.api.routes.webhook import webhook_event_id
from baton_ingress.appender import WebhookAppender
from baton_ingress.signature import sign
from baton_shared.events import WebhookBody, WebhookReceived, utcnow
from baton_shared.streams import names
from baton_shared.streams.bus import Bus, entry_fields

pytestmark = pytest.mark.integration

SECRET = "test-app-secret"
REFUSALS = {400, 401, 403, 413}


def signed(body: bytes) -> dict[str, str | bytes]:
    return {"X-Hub-Signature-256": sign(body, SECRET)}


MALFORMED: list[tuple[str, bytes, dict[str, str | bytes], int]] = [
    ("deeply nested array", b"[" * 100_000, {}, 400),
    ("deeply nested object", b'{"a":' * 100_000, {}, 400),
    ("huge integer literal", b'{"n": ' + b"9" * 10_000 + b"}", {}, 400),
    ("NaN scalar", b"NaN", {}, 400),
    ("JSON string", b'"entry"', {}, 400),
    ("null", b"null", {}, 400),
    ("lone surrogate escape is still JSON", b'{"t": "\\ud800"}', {}, 200),
    ("overlong UTF-8", b'{"t": "\xc0\xaf"}', {}, 400),
    ("NUL bytes", b"\x00" * 64, {}, 400),
    ("BOM then object", b'\xef\xbb\xbf{"entry": []}', {}, 400),
    ("whitespace only", b" \r\n\t ", {}, 400),
    (
        "unicode digits in Content-Length",
        b"{}",
        {"Content-Length": "\u00b2".encode("latin-1")},
        200,
    ),
]


@pytest.mark.parametrize(
    ("body", "extra", "status"),
    [pytest.param(b, e, s, id=name) for name, b, e, s in MALFORMED],
)
async def test_malformed_signed_bodies_are_refused_not_500(
    harness: Any, body: bytes, extra: dict[str, str | bytes], status: int
) -> None:
    async with harness.client(run_worker=False) as client:
        response = await client.post("/webhook", content=body, headers=signed(body) | extra)
    assert response.status_code == status, response.text
    if status != 200:
        assert response.json()["detail"]


@pytest.mark.parametrize(
    "signature",
    ["", " ", "sha256=", "sha256=zz", "sha1=" + "0" * 40, "\u00e9\u00e8", "sha256=" + "a" * 10_000],
)
async def test_strange_signature_headers_are_refused_not_500(harness: Any, signature: str) -> None:
    body = harness.body("text_reply")
    async with harness.client(run_worker=False) as client:
        response = await client.post(
            "/webhook",
            content=body,
            headers={"X-Hub-Signature-256": signature.encode("utf-8")},
        )
    assert response.status_code in {401, 403}


async def test_random_mutations_never_answer_500(harness: Any) -> None:
    """A seeded fuzz: fixtures cut, flipped and spliced, signed or not: a 200 or a refusal."""
    rng = random.Random(20260301)
    base = harness.body("batch_everything")
    async with harness.client(run_worker=False) as client:
        for _ in range(150):
            body = bytearray(base)
            for _ in range(rng.randint(0, 6)):
                match rng.randrange(4):
                    case 0:
                        del body[rng.randrange(len(body) + 1) :]
                    case 1 if body:
                        body[rng.randrange(len(body))] = rng.randrange(256)
                    case 2:
                        at = rng.randrange(len(body) + 1)
                        body[at:at] = rng.choice([b"[", b"{", b'"', b"\\", b"\xff", b"\x00"]) * 3
                    case _:
                        body = bytearray(rng.randbytes(rng.randrange(64)))
            raw = bytes(body)
            headers = signed(raw) if rng.random() < 0.8 else {"X-Hub-Signature-256": "sha256=0"}
            response = await client.post("/webhook", content=raw, headers=headers)
            assert response.status_code in REFUSALS | {200}, (raw[:80], response.text)
            if response.status_code == 200:
                assert isinstance(json.loads(raw), dict)


def _event(body: bytes) -> tuple[str, dict[str, str]]:
    """What the endpoint appends for `body`: (stream, fields)."""
    event = WebhookReceived.create(
        WebhookBody(body=body.decode(), signature=sign(body, SECRET), received_at=utcnow()),
        producer="ingress",
        event_id=webhook_event_id(body),
    )
    return event.stream, entry_fields(event)


async def test_concurrent_appends_each_get_their_own_outcome(bus: Bus) -> None:
    appender = WebhookAppender(bus, max_batch=16)
    bodies = [json.dumps({"n": n}).encode() for n in range(100)]
    ids = await asyncio.gather(*(appender.append(*_event(b)) for b in bodies))
    assert len(set(ids)) == 100  # every one appended, in batches of <= 16
    entries = await bus.redis.xrange(bus.key(names.WA_WEBHOOKS))
    assert [entry_id for entry_id, _ in entries] == ids  # in request order
    assert [json.loads(f["body"])["payload"]["body"] for _, f in entries] == [
        b.decode() for b in bodies
    ]


async def test_a_batch_that_redis_refuses_fails_every_waiter(prefix: str) -> None:
    broken = Bus.from_url("redis://127.0.0.1:1/0", prefix=prefix)
    try:
        appender = WebhookAppender(broken)
        outcomes = await asyncio.gather(
            *(appender.append(*_event(json.dumps({"n": n}).encode())) for n in range(5)),
            return_exceptions=True,
        )
    finally:
        await broken.aclose()
    assert all(isinstance(o, RedisError | OSError) for o in outcomes), outcomes
