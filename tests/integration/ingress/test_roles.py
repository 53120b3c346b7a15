"""`baton-ingress serve --role web | worker`: the endpoint and the worker as separate processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from baton_devtools.infra import free_port
from baton_ingress.main import cli
from baton_ingress.signature import sign
from baton_shared.events import MessageReceived
from baton_shared.streams import names
from baton_shared.testing import wait_until

from .conftest import SECRET, VERIFY_TOKEN

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent / "baton-ingress"


@contextlib.asynccontextmanager
async def serving(harness: Any, role: str, port: int) -> AsyncIterator[str]:
    """`baton-ingress serve --role <role>` in its own process, healthy; its base URL."""
    env = {
        **os.environ,
        "BATON_ENV": "test",
        "DATABASE_URL": harness.database_url,
        "REDIS_URL": harness.redis_url,
        "REDIS_PREFIX": harness.bus.prefix,
        "WA_APP_SECRET": SECRET,
        "WA_VERIFY_TOKEN": VERIFY_TOKEN,
        "CONSUMER_BLOCK_MS": "50",
        "LOG_LEVEL": "WARNING",
        "INGRESS_PORT" if role == "web" else "INGRESS_WORKER_PORT": str(port),
    }
    proc = await asyncio.create_subprocess_exec(
        str(BIN), "serve", "--role", role, env=env, stdin=asyncio.subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2, trust_env=False) as client:

            async def healthy() -> bool:
                assert proc.returncode is None, f"{role} exited with {proc.returncode}"
                with contextlib.suppress(httpx.HTTPError):
                    return (await client.get(f"{url}/health")).status_code == 200
                return False

            await wait_until(healthy, timeout=60, what=f"ingress {role} is healthy")
        yield url
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_web_only_accepts_and_a_worker_only_process_handles_it_later(harness: Any) -> None:
    body = harness.body("text_reply")
    async with serving(harness, "web", free_port()) as web, httpx.AsyncClient() as client:
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)}
        answer = await client.post(f"{web}/webhook", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        ready = (await client.get(f"{web}/health/ready")).json()
        assert ready == {"status": "ready"}  # no worker to wait for in a web process
    assert await harness.events(names.WA_INBOUND) == []
    assert await harness.archived(body) == 0  # nothing handled it: no worker ran

    async with serving(harness, "worker", free_port()) as worker:
        await wait_until(lambda: harness.archived(body), timeout=30, what="webhook archived")

        async def emitted() -> list[Any]:
            inbound = await harness.events(names.WA_INBOUND)
            return [e for e in inbound if isinstance(e, MessageReceived)]

        [message] = await wait_until(emitted, timeout=30, what="message emitted")
        assert message.payload.text == "My order #4471 still hasn't arrived"
        async with httpx.AsyncClient() as client:
            # A worker takes no webhooks; its health and metrics are there.
            assert (await client.post(f"{worker}/webhook", content=body)).status_code in (404, 405)
            assert (await client.get(f"{worker}/metrics/")).status_code == 200


def test_an_unknown_role_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["serve", "--role", "both"]) == 2
    assert "--role must be one of all, web, worker" in capsys.readouterr().err
