"""`baton-ingress replay`: re-emits archived bodies; de-duplication keeps it safe."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from baton_ingress.main import cli
from baton_shared.db import Database
from baton_shared.db.tables import outbox
from baton_shared.events import MessageReceived, WebhookReceived, utcnow
from baton_shared.streams import names
from baton_shared.testing import wait_until

pytestmark = pytest.mark.integration


async def outbox_empty(harness: Any) -> bool:
    db = Database(harness.database_url, "ingress", pool_size=1)
    try:
        async with db.session() as session:
            return (await session.scalar(select(func.count()).select_from(outbox))) == 0
    finally:
        await db.dispose()


async def messages(harness: Any) -> list[MessageReceived]:
    events = await harness.events(names.WA_INBOUND)
    return [e for e in events if isinstance(e, MessageReceived)]


async def test_replay_emits_what_was_rejected_and_nothing_twice(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = utcnow()
    body = harness.body("batch_everything")
    strict = harness.settings(WA_ALLOWED_PHONE_NUMBER_IDS="420123456789012")
    async with harness.client(strict) as client:
        assert (await harness.post(client, body)).status_code == 200
        await wait_until(lambda: harness.archived(body), what="archived")
        await wait_until(lambda: outbox_empty(harness), what="published")
    assert len(await messages(harness)) == 3  # the other number's message was dead-lettered

    for key, value in {
        "BATON_ENV": "test",
        "DATABASE_URL": harness.database_url,
        "REDIS_URL": harness.redis_url,
        "REDIS_PREFIX": harness.bus.prefix,
        "WA_APP_SECRET": "test-app-secret",
        "WA_VERIFY_TOKEN": "test-verify-token",
    }.items():
        monkeypatch.setenv(key, value)
    until = (utcnow() + timedelta(minutes=1)).isoformat()
    args = ["replay", "--since", since.isoformat(), "--until", until]
    assert await asyncio.to_thread(cli, args) == 0
    entries = await harness.bus.redis.xrange(harness.bus.key(names.WA_WEBHOOKS))
    replayed = [f for _, f in entries if harness.tag in f["body"]]
    assert len(replayed) == 2  # the original entry and its replay, with a fresh event id
    assert replayed[0]["event_id"] != replayed[1]["event_id"]
    assert {f["event_type"] for f in replayed} == {
        WebhookReceived.model_fields["event_type"].default
    }

    async with harness.client():  # the allow-list was lifted: the rejected part comes out
        await wait_until(lambda: _count_is(harness, 4), what="replayed message emitted")
        await wait_until(lambda: outbox_empty(harness), what="published")
    texts = sorted(m.payload.text or "" for m in await messages(harness))
    assert texts == sorted(
        ["Here is the invoice", "invoice-4471.pdf", "Me too", "Second business number"]
    )
    assert await harness.archived(body) == 1


async def _count_is(harness: Any, n: int) -> bool:
    return len(await messages(harness)) == n
