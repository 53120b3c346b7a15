"""`GET /webhook` (verification handshake) and `POST /webhook` (signed updates).

The POST path does the least possible work: signature, size, JSON, append the raw body to
`wa.webhooks`, answer 200. Parsing happens in the worker, so a parser bug never loses a body.
Concurrent requests share Redis round trips (`WebhookAppender`); each is still answered 200
only once Redis has its entry.

`POST /webhook` is a plain Starlette route (`router.add_route`), not a FastAPI endpoint: it
takes the raw request and nothing else, so there is no dependency resolution, parameter
validation or response serialisation to pay for on the hot path (it is therefore not in the
OpenAPI document; the GET handshake is).
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
from baton_ingress.api.deps import IngressContext, IngressDep
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


def _refuse(outcome: str, reason: str) -> JSONResponse:
    """The refusal for `outcome` (see `metrics.OUTCOME_STATUS`), counted."""
    status = metrics.count_webhook(outcome)
    return JSONResponse({"detail": reason}, status_code=status)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json_problem(text: str) -> str | None:
    """Why `text` is not a JSON object, or None when it is one."""
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        return f"body is not valid JSON: {exc}"
    except RecursionError:
        return "body is not valid JSON: nested too deeply"
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


async def receive(request: Request) -> Response:
    """Accept a signed webhook: 200 once its raw body is durably on `wa.webhooks`."""
    ctx: IngressContext = request.app.state.ingress
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        return _refuse("unsigned", "missing X-Hub-Signature-256 header")
    body = await _read_limited(request, ctx.settings.max_body_bytes)
    if body is None:
        return _refuse("too_large", f"body larger than {ctx.settings.max_body_bytes} bytes")
    if not signature_matches(body, signature, ctx.settings.app_secrets):
        return _refuse("bad_signature", "X-Hub-Signature-256 does not match the body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _refuse("not_json", "body is not UTF-8 text")
    problem = _json_problem(text)
    if problem is not None:
        return _refuse("not_json", problem)
    event = WebhookReceived.create(
        WebhookBody(body=text, signature=signature, received_at=utcnow()),
        producer="ingress",
        event_id=webhook_event_id(body),
    )
    try:
        await asyncio.wait_for(
            ctx.appender.append(event), timeout=ctx.settings.publish_timeout_seconds
        )
    except (RedisError, OSError, TimeoutError) as exc:
        # Not acknowledged, so WhatsApp retries: nothing answered 200 is ever lost.
        log.warning("cannot append webhook to the stream: %s: %s", type(exc).__name__, exc)
        return _refuse("unavailable", "temporarily unable to accept webhooks; retry later")
    metrics.count_webhook("ok")
    return PlainTextResponse("OK")


router.add_route("/webhook", receive, methods=["POST"], include_in_schema=False)
