"""Export Baton hand-offs to a CRM webhook: an example of an external stream consumer.

It reads `conv.control` with a consumer group of its own, picks the hand-off events
(`conversation.intervention_requested`: the AI asked for a human; `conversation.taken_over`:
an operator took the conversation), and POSTs each one as JSON to a webhook, signed with
HMAC-SHA256 over the body in `X-Baton-Signature-256: sha256=<hex>`. It depends on redis-py and
httpx only: no Baton package, the envelope is parsed as the plain JSON it is (docs/events.md).

Delivery is at least once: an entry is acknowledged only after the webhook answered 2xx (or
refused it for good with a 4xx), so a crash may post an event twice. The receiver de-duplicates
on `event_id`, which is also sent as the `Idempotency-Key` header.

Run: REDIS_URL=redis://localhost:6379/0 CRM_WEBHOOK_URL=https://crm.example/hooks/baton \
     CRM_WEBHOOK_SECRET=... python examples/consumer/handoff_exporter.py
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import signal
import socket
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import ResponseError

log = logging.getLogger("handoff_exporter")

STREAM = "conv.control"
HANDOFF_TYPES = frozenset({"conversation.intervention_requested", "conversation.taken_over"})
SIGNATURE_HEADER = "X-Baton-Signature-256"


def sign(secret: str, body: bytes) -> str:
    """The signature header value: `sha256=` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def handoff_record(fields: dict[str, str]) -> dict[str, Any] | None:
    """The record to export for a stream entry, or None when it is not a hand-off.

    Routing uses the flat `event_type` field; the `body` field is the JSON envelope. Unknown
    fields are ignored, so newer Baton versions that add fields do not break this consumer.
    """
    if fields.get("event_type") not in HANDOFF_TYPES or fields.get("schema_version") != "1":
        return None
    envelope: dict[str, Any] = json.loads(fields["body"])
    payload: dict[str, Any] = envelope.get("payload") or {}
    return {
        "event_id": envelope["event_id"],
        "event_type": envelope["event_type"],
        "occurred_at": envelope.get("occurred_at"),
        "conversation_id": envelope.get("conversation_id"),
        "phone_number_id": payload.get("phone_number_id"),
        "wa_id": payload.get("wa_id"),
        "mode": payload.get("mode"),
        "operator": payload.get("operator"),
        "reason": payload.get("reason"),
    }


class PermanentError(Exception):
    """The webhook refused the record (4xx other than 408/429); retrying will not help."""


async def post_signed(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    record: dict[str, Any],
    *,
    attempts: int = 6,
    backoff: float = 0.5,
) -> None:
    """POST one record, retrying 5xx, 408, 429 and network errors with exponential backoff."""
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        "Idempotency-Key": str(record["event_id"]),
    }
    for attempt in range(1, attempts + 1):
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.is_success:
                return
            if response.status_code < 500 and response.status_code not in (408, 429):
                raise PermanentError(f"webhook answered {response.status_code}")
            problem = f"webhook answered {response.status_code}"
        if attempt == attempts:
            raise RuntimeError(f"giving up after {attempts} attempts: {problem}")
        delay = backoff * 2 ** (attempt - 1)
        log.warning("attempt %d failed (%s); retrying in %.2fs", attempt, problem, delay)
        await asyncio.sleep(delay)


async def ensure_group(redis: Redis, key: str, group: str, start: str) -> None:
    """Create the consumer group (and the stream) unless it exists."""
    try:
        await redis.xgroup_create(key, group, id=start, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def run(
    redis_url: str,
    prefix: str,
    group: str,
    webhook_url: str,
    secret: str,
    stop: asyncio.Event,
    *,
    consumer: str | None = None,
    start: str = "$",
    backoff: float = 0.5,
) -> None:
    """Export hand-offs until `stop` is set.

    `start` is where a new group begins: `$` for events from now on, `0` to export history.
    Entries this consumer left unacknowledged (a crash, an unreachable webhook) are retried
    first, by reading the group's pending list (id `0`) before new entries (id `>`).
    """
    key = prefix + STREAM
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await ensure_group(redis, key, group, start)
            backlog = True
            while not stop.is_set():
                reply: Any = await redis.xreadgroup(
                    group, name, {key: "0" if backlog else ">"}, count=32, block=1000
                )
                entries: list[tuple[str, dict[str, str]]] = reply[0][1] if reply else []
                if backlog and not entries:
                    backlog = False
                for entry_id, fields in entries:
                    try:
                        await export(client, webhook_url, secret, fields, backoff=backoff)
                    except RuntimeError:
                        log.exception("entry %s stays pending; retried later", entry_id)
                        backlog = True
                        break
                    await redis.xack(key, group, entry_id)
    finally:
        await redis.aclose()


async def export(
    client: httpx.AsyncClient, url: str, secret: str, fields: dict[str, str], *, backoff: float
) -> None:
    """Post one entry if it is a hand-off; malformed or refused entries are logged and skipped."""
    try:
        record = handoff_record(fields)
    except (KeyError, TypeError, ValueError) as exc:
        log.error("skipping a malformed entry: %s", exc)
        return
    if record is None:
        return
    try:
        await post_signed(client, url, secret, record, backoff=backoff)
    except PermanentError as exc:
        log.error("skipping %s: %s", record["event_id"], exc)
        return
    log.info("exported %s %s", record["event_type"], record["event_id"])


async def main() -> None:
    """Run from environment variables until SIGINT or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        os.environ.get("REDIS_PREFIX", ""),
        os.environ.get("EXPORTER_GROUP", "crm-exporter"),
        os.environ["CRM_WEBHOOK_URL"],
        os.environ["CRM_WEBHOOK_SECRET"],
        stop,
        start=os.environ.get("EXPORTER_START", "$"),
    )


if __name__ == "__main__":
    asyncio.run(main())
