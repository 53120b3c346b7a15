"""`GET /webhook` (verification handshake) and `POST /webhook` (signed updates).

The POST path does the least possible work: signature, size, JSON, append the raw body to
`wa.webhooks`, answer 200. Parsing happens in the worker, so a parser bug never loses a body.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from redis.exceptions import RedisError

from baton_ingress import metrics
from baton_ingress.api.deps import IngressDep
from baton_ingress.signature import signature_matches
from baton_shared.events import WebhookBody, WebhookReceived, utcnow

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhook"])

SIGNATURE_HEADER = "x-hub-signature-256"
_BODY_NS = uuid.UUID("3b0f8e52-6a0e-4d5c-9d62-6f1e2b7c4a19")


def webhook_event_id(body: bytes) -> uuid.UUID:
    """The event id of a body: byte-identical redeliveries get the same id, so the bus
    appends them once."""
    return uuid.uuid5(_BODY_NS, hashlib.sha256(body).hexdigest())


def _refuse(status: int, reason: str) -> JSONResponse:
    metrics.WEBHOOKS.labels(str(status)).inc()
    return JSONResponse({"detail": reason}, status_code=status)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json_problem(body: bytes) -> str | None:
    """Why `body` is not a JSON object, or None when it is one."""
    try:
        parsed = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "body is not UTF-8 text"
    except ValueError as exc:
        return f"body is not valid JSON: {exc}"
    if not isinstance(parsed, dict):
        return f"body must be a JSON object, got {type(parsed).__name__}"
    return None


@router.get("/webhook", response_class=PlainTextResponse)
async def verify(
    ctx: IngressDep,
    mode: str = Query("", alias="hub.mode"),
    token: str = Query("", alias="hub.verify_token"),
    challenge: str = Query("", alias="hub.challenge"),
) -> PlainTextResponse:
    """Meta's subscription handshake: echo `hub.challenge` when the verify token matches."""
    expected = ctx.settings.wa_verify_token
    token_ok = hmac.compare_digest(token.encode(), expected.encode())
    if mode == "subscribe" and token_ok and expected:
        return PlainTextResponse(challenge)
    return PlainTextResponse("verification failed", status_code=403)


@router.post("/webhook")
async def receive(request: Request, ctx: IngressDep) -> Response:
    """Accept a signed webhook: 200 once its raw body is durably on `wa.webhooks`."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        return _refuse(401, "missing X-Hub-Signature-256 header")
    body = await _read_limited(request, ctx.settings.max_body_bytes)
    if body is None:
        return _refuse(413, f"body larger than {ctx.settings.max_body_bytes} bytes")
    if not signature_matches(body, signature, ctx.settings.app_secrets):
        return _refuse(403, "X-Hub-Signature-256 does not match the body")
    problem = _json_problem(body)
    if problem is not None:
        return _refuse(400, problem)
    event = WebhookReceived.create(
        WebhookBody(body=body.decode(), signature=signature, received_at=utcnow()),
        producer="ingress",
        event_id=webhook_event_id(body),
    )
    try:
        await asyncio.wait_for(ctx.bus.publish(event), timeout=ctx.settings.publish_timeout_seconds)
    except (RedisError, OSError, TimeoutError) as exc:
        # Not acknowledged, so WhatsApp retries: nothing answered 200 is ever lost.
        log.warning("cannot append webhook to the stream: %s: %s", type(exc).__name__, exc)
        return _refuse(503, "temporarily unable to accept webhooks; retry later")
    metrics.WEBHOOKS.labels("200").inc()
    return PlainTextResponse("OK")
