"""`GET /webhook` (verification handshake) and `POST /webhook` (signed updates).

The POST path does the least possible work: signature, size, JSON, append the raw body to
`wa.webhooks`, answer 200. Parsing happens in the worker, so a parser bug never loses a body.
Concurrent requests share Redis round trips (`WebhookAppender`); each is still answered 200
only once Redis has its entry.

`POST /webhook` is a bare ASGI app routed by Starlette (`WebhookEndpoint`), not a FastAPI
endpoint: it reads the raw body from the ASGI channel and sends its answer itself, so there
is no dependency resolution, validation, `Request`/`Response` object or serialisation to pay
for on the hot path (it is therefore not in the OpenAPI document; the GET handshake is).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from baton_ingress import metrics
from baton_ingress.api.deps import IngressContext, IngressDep
from baton_ingress.signature import signature_matches
from baton_shared.events import WebhookBody, WebhookReceived, utcnow
from baton_shared.observability.http import ObservabilityMiddleware

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhook"])

SIGNATURE_HEADER = "x-hub-signature-256"
_BODY_NS = uuid.UUID("3b0f8e52-6a0e-4d5c-9d62-6f1e2b7c4a19")


def webhook_event_id(body: bytes) -> uuid.UUID:
    """The event id of a body: byte-identical redeliveries get the same id, so the bus
    appends them once."""
    return uuid.uuid5(_BODY_NS, hashlib.sha256(body).hexdigest())


_SIGNATURE_HEADER = SIGNATURE_HEADER.encode()
_TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]
_JSON_HEADERS = [(b"content-type", b"application/json")]


class _DisconnectedError(Exception):
    """The client went away before its body arrived: there is no one to answer."""


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, outcome: str, reason: str) -> None:
    """Answer the refusal for `outcome` (see `metrics.OUTCOME_STATUS`), counted, as
    `{"detail": reason}` (what FastAPI's `JSONResponse` would send)."""
    status = metrics.count_webhook(outcome)
    body = json.dumps({"detail": reason}, ensure_ascii=False, separators=(",", ":")).encode()
    await _answer(send, status, body, _JSON_HEADERS)


def _headers(scope: Scope) -> tuple[str | None, str | None]:
    """The signature and content-length headers, in one scan (names are lower case in ASGI)."""
    signature = length = None
    for name, value in scope["headers"]:
        if name == _SIGNATURE_HEADER:
            signature = value.decode("latin-1")
        elif name == b"content-length":
            length = value.decode("latin-1")
    return signature, length


async def _read_limited(receive: Receive, declared: str | None, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is known to exceed `limit` bytes."""
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _DisconnectedError
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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


class WebhookEndpoint:
    """`POST /webhook` as a bare ASGI app: 200 once the raw body is durably on `wa.webhooks`.

    Not a `request -> response` function: Starlette would wrap it in a `Request`, an
    exception-handling layer and a `Response` object per call, all measurable at thousands
    of requests a second, and none needed to read one body and answer it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: IngressContext = scope["app"].state.ingress
        settings = ctx.settings
        signature, declared = _headers(scope)
        if not signature:
            return await _refuse(send, "unsigned", "missing X-Hub-Signature-256 header")
        try:
            body = await _read_limited(receive, declared, settings.max_body_bytes)
        except _DisconnectedError:
            return None
        if body is None:
            return await _refuse(
                send, "too_large", f"body larger than {settings.max_body_bytes} bytes"
            )
        if not signature_matches(body, signature, settings.app_secrets):
            return await _refuse(
                send, "bad_signature", "X-Hub-Signature-256 does not match the body"
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return await _refuse(send, "not_json", "body is not UTF-8 text")
        problem = _json_problem(text)
        if problem is not None:
            return await _refuse(send, "not_json", problem)
        event = WebhookReceived.create(
            WebhookBody(body=text, signature=signature, received_at=utcnow()),
            producer="ingress",
            event_id=webhook_event_id(body),
        )
        try:
            async with asyncio.timeout(settings.publish_timeout_seconds):
                await ctx.appender.append(event)
        except (RedisError, OSError, TimeoutError) as exc:
            # Not acknowledged, so WhatsApp retries: nothing answered 200 is ever lost.
            log.warning("cannot append webhook to the stream: %s: %s", type(exc).__name__, exc)
            return await _refuse(
                send, "unavailable", "temporarily unable to accept webhooks; retry later"
            )
        metrics.count_webhook("ok")
        return await _answer(send, 200, b"OK", _TEXT_HEADERS)


# An ASGI app, not a function: Starlette routes to it as is (see `WebhookEndpoint`).
router.add_route(
    "/webhook",
    WebhookEndpoint(),  # type: ignore[arg-type]
    methods=["POST"],
    include_in_schema=False,
)
_ROUTE = router.routes[-1]


class WebhookFastPath:
    """Middleware that hands `POST /webhook` to `WebhookEndpoint` directly, in its own
    request span and latency metric (`ObservabilityMiddleware`, route `/webhook`).

    Everything else goes down the app as usual. Skipped for the webhook: the layers inside
    the user middleware (exception handlers, the per-request exit stack, the routers), which
    cost about as much CPU as the endpoint itself and which it does not use. Still around it:
    Starlette's `ServerErrorMiddleware` and FastAPI's outer layers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.webhook = ObservabilityMiddleware(_ROUTE.app)  # type: ignore[attr-defined]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/webhook" and scope["method"] == "POST":
            scope["route"] = _ROUTE  # what the router would have set: the metric's label
            await self.webhook(scope, receive, send)
            return
        await self.app(scope, receive, send)
