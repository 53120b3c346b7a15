"""A real `baton-sender serve` process killed (SIGKILL) while its WhatsApp call is in flight.

The documented behaviour (see `dispatch/send.py`): the message was `calling` when the process
died, so nobody knows whether WhatsApp got it. The next sender recovers it as failed with
reason `outcome_unknown` and does NOT send it again; WhatsApp (the emulator) has it once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from baton_sender.db import repo
from baton_sender.settings import SenderSettings
from baton_sender.status import OUTCOME_UNKNOWN
from baton_shared.db import Database
from baton_shared.events import MessageFailed
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, Emulator, clean_schema, command, new_customer, results

pytestmark = pytest.mark.integration
SENDER = Path(sys.executable).parent / "baton-sender"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def sender_process(settings: SenderSettings) -> AsyncIterator[asyncio.subprocess.Process]:
    """`baton-sender serve` on a free port with the test's database, Redis prefix, emulator."""
    port = free_port()
    env = {
        **os.environ,
        "BATON_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_PREFIX": settings.redis_prefix,
        "WA_GRAPH_URL": settings.wa_graph_url,
        "WA_ACCESS_TOKEN": settings.wa_access_token,
        "SENDER_PORT": str(port),
        "SENDER_CLAIM_LEASE_SECONDS": "2",
        "SENDER_WINDOW_GRACE_SECONDS": "0",
        "CONSUMER_BLOCK_MS": "100",
        "LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        str(SENDER), "serve", env=env, stdout=asyncio.subprocess.DEVNULL
    )

    async def healthy() -> bool:
        async with httpx.AsyncClient(timeout=2) as http:
            try:
                return (await http.get(f"http://127.0.0.1:{port}/health")).status_code == 200
            except httpx.HTTPError:
                return False

    try:
        await wait_until(healthy, timeout=120, what="baton-sender serve healthy")
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def status_of(db: Database, command_id: str) -> str | None:
    async with db.session() as session:
        rows = await repo.get_by_command(session, command_id)
    return str(rows[0].status) if rows else None


async def test_sigkill_during_the_call_is_recovered_as_outcome_unknown_not_resent(
    settings: SenderSettings, bus: Bus, emulator: Emulator
) -> None:
    await clean_schema(settings.database_url)
    db = Database(settings.database_url, "sender", pool_size=1)
    to = new_customer()
    try:
        async with db.session() as session:
            await repo.touch_window(session, PHONE_NUMBER_ID, to, datetime.now(UTC))
        # WhatsApp takes 3 s to answer: the process is killed while the call is in flight.
        await emulator.fault(to=to, delay_ms=3000, count=1)
        event = command(to, text="in flight when the sender died")
        command_id = event.payload.command_id
        async with sender_process(settings) as proc:
            await bus.publish(event)

            async def calling() -> bool:
                return await status_of(db, command_id) == "calling"

            await wait_until(calling, timeout=60, what="the call in flight")

            async def arrived() -> bool:  # the emulator took the delay fault: request is in
                faults = (await emulator.http.get("/_emulator/faults")).json()["faults"]
                # Only this customer's rule: other tests' unlimited rules stay in the emulator.
                return not [rule for rule in faults if rule.get("to") == to]

            await wait_until(arrived, timeout=30, what="the request reached WhatsApp")
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        # WhatsApp got it anyway (the emulator finishes the request the process left).
        await wait_until(lambda: emulator.messages(to), timeout=30, what="emulator has it")
        async with sender_process(settings):
            failed = await wait_until(
                lambda: results(bus, command_id), timeout=60, what="recovery outcome"
            )
        [outcome] = failed
        assert isinstance(outcome, MessageFailed)
        assert outcome.payload.reason == OUTCOME_UNKNOWN
        assert len(await emulator.messages(to)) == 1  # at most once: not sent again
    finally:
        await emulator.http.delete("/_emulator/faults")
        await db.dispose()
