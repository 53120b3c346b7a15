"""The batched statements keep order and record a command id once (real PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from baton_sender.db import repo
from baton_sender.handlers.message_requested import message_rows
from baton_sender.status import Status
from baton_shared.db import Database
from baton_shared.events import Author, MessageRequested, OutboundCommand, OutboundKind

pytestmark = pytest.mark.integration


def requested(command_id: str, to: str, text_: str = "hi") -> MessageRequested:
    payload = OutboundCommand(
        command_id=command_id, phone_number_id="1", to=to, author=Author.AI,
        kind=OutboundKind.TEXT, text=text_, control_epoch=3,
    )  # fmt: skip
    return MessageRequested.create(payload, producer="test")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, "sender", pool_size=1)
    async with database.session() as session:
        await session.execute(text("TRUNCATE messages, windows, inbox, outbox"))
    yield database
    async with database.session() as session:
        await session.execute(text("TRUNCATE messages, windows, inbox, outbox"))
    await database.dispose()


async def test_add_messages_keeps_order_and_records_a_command_once(db: Database) -> None:
    run = uuid.uuid4().hex[:6]
    long_text = "word " * 1000  # 5,000 characters: two parts
    events = [requested(f"{run}-{n}", f"c{n % 3}") for n in range(10)]
    events.insert(4, requested(f"{run}-long", "c1", long_text))
    rows = [row for event in events for row in message_rows(event)]
    repeated = message_rows(events[2])  # the same command again, inside the batch
    async with db.session() as session:
        added = await repo.add_messages(session, rows[:6] + repeated + rows[6:])
    assert added == len(rows) == 12
    async with db.session() as session:
        again = await repo.add_messages(session, rows[3:5])  # a redelivered batch
        stored = (
            await session.execute(
                text(
                    "SELECT command_id, part, parts, command, control_epoch, status "
                    "FROM messages ORDER BY seq"
                )
            )
        ).all()
    assert again == 0
    assert [(r.command_id, r.part) for r in stored] == [(r["command_id"], r["part"]) for r in rows]
    long_parts = [r for r in stored if r.command_id == f"{run}-long"]
    assert [(r.part, r.parts) for r in long_parts] == [(0, 2), (1, 2)]
    assert " ".join(r.command["text"] for r in long_parts).split() == long_text.split()
    assert {(r.control_epoch, r.status) for r in stored} == {(3, Status.QUEUED.value)}


async def test_claim_inbox_many_returns_only_new_ids(db: Database) -> None:
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with db.session() as session:
        assert await repo.claim_inbox_many(session, "t", [first, second]) == {first, second}
    async with db.session() as session:
        assert await repo.claim_inbox_many(session, "t", [second, third, third]) == {third}


async def test_mark_sent_moves_forward_only(db: Database) -> None:
    run = uuid.uuid4().hex[:6]
    rows = [row for n in range(4) for row in message_rows(requested(f"{run}-{n}", f"d{n}"))]
    async with db.session() as session:
        await repo.add_messages(session, rows)
        seqs = [
            s for (s,) in (await session.execute(text("SELECT seq FROM messages ORDER BY seq")))
        ]
        for seq, status in zip(seqs, ["calling", "failed", "read", "calling"], strict=True):
            await repo.set_fields(session, seq, status=status)
    async with db.session() as session:
        marked = await repo.mark_sent(
            session, [(seqs[3], "wamid.d"), (seqs[0], "wamid.a"), (seqs[1], "wamid.b"),
                      (seqs[2], "wamid.c")],
        )  # fmt: skip
    assert [(r.seq, r.status, r.wa_message_id) for r in marked] == [
        (seqs[0], "sent", "wamid.a"),
        (seqs[1], "failed", "wamid.b"),  # a failed webhook overtook the answer: stays failed
        (seqs[2], "read", "wamid.c"),  # already read: never back to sent
        (seqs[3], "sent", "wamid.d"),
    ]
    assert all(r.request_event and r.conversation_id for r in marked)
