"""`GET /webhook` (verification handshake) and `POST /webhook` (signed updates).

The POST path does the least possible work: signature, size, JSON, append the raw body to
`wa.webhooks`, answer 200. Parsing happens in the worker, so a parser bug never loses a body.
Concurrent requests share Redis round trips (`WebhookAppender`); each is still answered 200
only once Redis has its entry.

`POST /webhook` is a bare ASGI app (`WebhookEndpoint`) that `api.front.IngressFront` calls
before FastAPI sees the request: it reads the raw body from the ASGI channel and sends its
answer itself, so there is no middleware stack, routing, dependency resolution, validation,
`Request`/`Response` object or serialisation to pay for on the hot path (it is therefore not
in the OpenAPI document; the GET handshake is).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from baton_ingress import metrics
from baton_ingress.api.deps import IngressContext, IngressDep
from baton_ingress.signature import signature_matches
from baton_shared.events import utcnow, uuid_text, webhook_received_fields
from baton_shared.streams import names

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhook"])

SIGNATURE_HEADER = "x-hub-signature-256"
_BODY_NS = uuid.UUID("3b0f8e52-6a0e-4d5c-9d62-6f1e2b7c4a19")
_BODY_NS_BYTES = _BODY_NS.bytes


def webhook_event_id(body: bytes) -> uuid.UUID:
    """The event id of a body: byte-identical redeliveries get the same id, so the bus
    appends them once."""
    return uuid.UUID(webhook_event_key(body))


def webhook_event_key(body: bytes) -> str:
    """`str(webhook_event_id(body))`, the UUID 5 of the body's SHA-256 (hex) in `_BODY_NS`,
    written without building a `UUID` (a third of the cost, on every webhook). The ids must
    never change: a redelivery is recognised by its id (test_webhook_ids.py)."""
    name = hashlib.sha256(body).hexdigest().encode()
    return uuid_text(hashlib.sha1(_BODY_NS_BYTES + name, usedforsecurity=False).hexdigest(), 5)


_SIGNATURE_HEADER = SIGNATURE_HEADER.encode()
_TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]
_JSON_HEADERS = [(b"content-type", b"application/json")]


_RETRY_LATER = "temporarily unable to accept webhooks; retry later"


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
    """Why `text` is not a JSON object, or None when it is one.

    orjson first (a third of `json.loads`'s time, on every webhook). It is stricter than the
    standard library, which the worker parses with: NaN, lone surrogate escapes and integers
    past 64 bits are JSON to `json`, so what orjson refuses is judged again by `json`, which
    also words the reason."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
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

    Never a 500: every refusal has its status and reason, and anything unexpected (a bug) is
    logged and answered 503, which WhatsApp retries — the body is not acknowledged, so it is
    not lost. (Nothing outside catches for it: `IngressFront` calls it before FastAPI's
    error middleware.)"""

    def __init__(self, ctx: IngressContext) -> None:
        self.appender = ctx.appender
        self.secrets = ctx.settings.app_secrets  # a property that splits a string: once
        self.max_body_bytes = ctx.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            outcome, reason = await self._accept(scope, receive)
        except _DisconnectedError:
            return
        except Exception:
            log.exception("POST /webhook failed unexpectedly; answering 503")
            outcome, reason = "unavailable", _RETRY_LATER
        if outcome == "ok":
            metrics.count_webhook("ok")
            await _answer(send, 200, b"OK", _TEXT_HEADERS)
        else:
            await _refuse(send, outcome, reason)

    async def _accept(self, scope: Scope, receive: Receive) -> tuple[str, str]:
        """Check and append one webhook: its outcome (`metrics.OUTCOME_STATUS`) and, for a
        refusal, the reason."""
        signature, declared = _headers(scope)
        if not signature:
            return "unsigned", "missing X-Hub-Signature-256 header"
        body = await _read_limited(receive, declared, self.max_body_bytes)
        if body is None:
            return "too_large", f"body larger than {self.max_body_bytes} bytes"
        if not signature_matches(body, signature, self.secrets):
            return "bad_signature", "X-Hub-Signature-256 does not match the body"
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return "not_json", "body is not UTF-8 text"
        problem = _json_problem(text)
        if problem is not None:
            return "not_json", problem
        event_id = webhook_event_key(body)
        fields = webhook_received_fields(
            text, signature, utcnow(), event_id=event_id, producer="ingress"
        )
        try:
            await self.appender.append(names.WA_WEBHOOKS, fields)
        except (RedisError, OSError, TimeoutError) as exc:
            # Not acknowledged, so WhatsApp retries: nothing answered 200 is ever lost.
            log.warning("cannot append webhook to the stream: %s: %s", type(exc).__name__, exc)
            return "unavailable", _RETRY_LATER
        return "ok", ""
