"""The example external consumer (examples/consumer/) exports a real hand-off from the stack
to a CRM webhook, signed, retrying a failing receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.util
import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis

from baton_devtools.supervisor import Stack
from baton_shared.testing import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "crm-shared-secret"


def load_exporter() -> ModuleType:
    """The example as an outsider has it: a file, not a package of ours."""
    path = ROOT / "examples" / "consumer" / "handoff_exporter.py"
    spec = importlib.util.spec_from_file_location("handoff_exporter", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Receiver:
    """A CRM webhook double: records every request; answers 503 to the first try of each event."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self.app = FastAPI()
        self.app.post("/hooks/baton")(self.hook)

    async def hook(self, request: Request) -> Response:
        headers = dict(request.headers)
        first = all(h["idempotency-key"] != headers["idempotency-key"] for _, h in self.requests)
        self.requests.append((await request.body(), headers))
        return Response(status_code=503 if first else 204)

    def records(self, wa_id: str) -> list[tuple[dict[str, Any], bytes, dict[str, str]]]:
        """Parsed requests about one customer, with their raw body and headers."""
        found = []
        for body, headers in self.requests:
            record = json.loads(body)
            if record["wa_id"] == wa_id:
                found.append((record, body, headers))
        return found


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    target = Receiver()
    server = uvicorn.Server(uvicorn.Config(target.app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def started() -> bool:
        return bool(server.started)

    await wait_until(started, timeout=10, what="the webhook receiver starts")
    yield target, f"http://127.0.0.1:{port}/hooks/baton"
    server.should_exit = True
    await task
    sock.close()


async def test_a_handoff_reaches_the_crm_webhook_signed(
    stack: Stack, receiver: tuple[Receiver, str]
) -> None:
    exporter = load_exporter()
    target, url = receiver
    wa_id = "5511987650801"
    group = f"crm-exporter-{uuid.uuid4().hex[:8]}"
    prefix = stack.env["REDIS_PREFIX"]
    redis = Redis.from_url(stack.env["REDIS_URL"], decode_responses=True)
    stop = asyncio.Event()
    task = asyncio.create_task(
        exporter.run(stack.env["REDIS_URL"], prefix, group, url, SECRET, stop, backoff=0.05)
    )

    async def group_exists() -> bool:
        if task.done():
            task.result()  # surface the exporter's error
        if not await redis.exists(prefix + "conv.control"):
            return False
        return any(g["name"] == group for g in await redis.xinfo_groups(prefix + "conv.control"))

    try:
        await wait_until(group_exists, timeout=10, what="the exporter's consumer group exists")
        async with httpx.AsyncClient(timeout=10) as client:
            sent = await client.post(
                f"{stack.url('wa-emulator')}/_emulator/inbound",
                json={"from": wa_id, "text": "Can I talk to a human, please?", "name": "Rui"},
            )
            assert sent.status_code == 200, sent.text

        async def retried() -> list[tuple[dict[str, Any], bytes, dict[str, str]]]:
            found = target.records(wa_id)
            return found if len(found) >= 2 else []

        records = await wait_until(retried, timeout=60, what="the hand-off reaches the CRM")
        record, body, headers = records[0]
        assert record["event_type"] == "conversation.intervention_requested"
        assert record["mode"] == "pending_human"
        assert record["conversation_id"]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-baton-signature-256"], expected)
        assert headers["idempotency-key"] == record["event_id"]
        # The first POST got 503 and was retried with the same signed body.
        assert records[1][1] == body
        assert records[1][2]["x-baton-signature-256"] == headers["x-baton-signature-256"]
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        await redis.xgroup_destroy(prefix + "conv.control", group)
        await redis.aclose()
