"""Retention (`RETENTION_DAYS`): each service's old records go, in batches; what a live
process still needs stays whatever its age (a message waiting for its turn, a turn in flight,
a message still being sent)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from baton_agent.retention import RETENTION as AGENT_RETENTION
from baton_buffer.db.models import RETENTION as BUFFER_RETENTION
from baton_ingress.db.models import RETENTION as INGRESS_RETENTION
from baton_operator_api.db.models import TRANSCRIPT_RETENTION
from baton_operator_api.settings import OperatorApiSettings
from baton_sender.db.models import RETENTION as SENDER_RETENTION
from baton_shared.db import Database
from baton_shared.db.retention import Prune, Pruner
from baton_shared.runtime import Runtime
from baton_shared.settings import BaseServiceSettings

pytestmark = pytest.mark.integration

KEEP = timedelta(days=30)
OLD = timedelta(days=40)
RECENT = timedelta(days=2)


@pytest.fixture
async def dbs(database_url: str) -> AsyncIterator[dict[str, Database]]:
    """The run's database, one handle per service schema."""
    handles = {s: Database(database_url, s, pool_size=2) for s in ("ingress", "buffer", "agent")}
    handles["sender"] = Database(database_url, "sender", pool_size=2)
    handles["operator"] = Database(database_url, "operator", pool_size=2)
    yield handles
    for db in handles.values():
        await db.dispose()


async def run(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.sessions() as session, session.begin():
        result = await session.execute(text(sql), params)
        return list(result) if result.returns_rows else []


async def prune(db: Database, rules: list[Prune], batch: int = 2) -> dict[str, int]:
    """Prune with a tiny batch, so every rule takes several rounds."""
    return await Pruner(db, rules, retention=KEEP, batch=batch).prune()


async def test_ingress_forgets_old_bodies_and_duplicate_markers(dbs: dict[str, Database]) -> None:
    db = dbs["ingress"]
    tag = uuid.uuid4().hex
    for age, name in ((OLD, "old"), (OLD, "old2"), (OLD, "old3"), (RECENT, "new")):
        await run(
            db,
            "INSERT INTO webhooks (body_sha256, event_id, received_at, signature, body) "
            "VALUES (:sha, gen_random_uuid(), now() - CAST(:age AS interval), 'sha256=x', '{}')",
            sha=f"{tag}-{name}",
            age=age,
        )
        await run(
            db,
            "INSERT INTO seen_messages VALUES (:id, '1', now() - CAST(:age AS interval))",
            id=f"wamid.{tag}-{name}",
            age=age,
        )
        await run(
            db,
            "INSERT INTO seen_statuses VALUES (:id, 'delivered', now() - CAST(:age AS interval))",
            id=f"wamid.{tag}-{name}",
            age=age,
        )

    pruned = await prune(db, INGRESS_RETENTION)

    assert pruned == {"webhooks": 3, "seen_messages": 3, "seen_statuses": 3}
    for sql, kept in (
        ("SELECT body_sha256 FROM webhooks WHERE body_sha256 LIKE :t", f"{tag}-new"),
        ("SELECT message_id FROM seen_messages WHERE message_id LIKE :t", f"wamid.{tag}-new"),
        ("SELECT message_id FROM seen_statuses WHERE message_id LIKE :t", f"wamid.{tag}-new"),
    ):
        assert [r[0] for r in await run(db, sql, t=f"%{tag}%")] == [kept]


async def _buffer_turn(
    db: Database,
    conversation: str,
    released: timedelta,
    *,
    done: bool,
    messages: int,
    timed_out: bool = False,
) -> uuid.UUID:
    """A turn released `released` ago with `messages` messages; `done` completes it and
    `timed_out` gives it up, both at its release time."""
    turn_id = uuid.uuid4()
    sequence = (
        await run(db, "SELECT count(*) FROM turns WHERE conversation_id = :c", c=conversation)
    )[0][0] + 1
    await run(
        db,
        "INSERT INTO turns (turn_id, conversation_id, sequence, closed_by, message_count, "
        "released_at, completed_at, timed_out_at) VALUES (:t, :c, :s, 'quiet', :n, "
        "now() - CAST(:age AS interval), "
        "CASE WHEN :done THEN now() - CAST(:age AS interval) END, "
        "CASE WHEN :timed_out THEN now() - CAST(:age AS interval) END)",
        age=released,
        done=done,
        timed_out=timed_out,
        t=turn_id,
        c=conversation,
        s=sequence,
        n=messages,
    )
    for _ in range(messages):
        await _buffer_message(db, conversation, released, turn_id)
    return turn_id


async def _buffer_message(
    db: Database, conversation: str, arrived: timedelta, turn_id: uuid.UUID | None
) -> None:
    await run(
        db,
        "INSERT INTO messages (message_id, conversation_id, type, wa_timestamp, arrived_at, "
        "event_id, correlation_id, traceparent, payload, turn_id) VALUES (:m, :c, 'text', "
        "now() - CAST(:age AS interval), now() - CAST(:age AS interval), "
        "gen_random_uuid(), gen_random_uuid(), '00-x', '{}', :t)",
        age=arrived,
        m=f"wamid.{uuid.uuid4().hex}",
        c=conversation,
        t=turn_id,
    )


async def test_buffer_forgets_finished_turns_with_their_messages(dbs: dict[str, Database]) -> None:
    db = dbs["buffer"]
    done, busy = f"conv-{uuid.uuid4().hex}", f"conv-{uuid.uuid4().hex}"
    for conversation in (done, busy):
        await run(
            db,
            "INSERT INTO conversations (conversation_id, phone_number_id, customer_id) "
            "VALUES (:c, '1', '2')",
            c=conversation,
        )
    old_done = await _buffer_turn(db, done, OLD, done=True, messages=3)
    recent_done = await _buffer_turn(db, done, RECENT, done=True, messages=1)
    await _buffer_message(db, done, OLD, None)  # waiting for a turn for 40 days: stays
    in_flight = await _buffer_turn(db, busy, OLD, done=False, messages=2)
    await run(
        db,
        "UPDATE conversations SET in_flight_turn_id = :t, in_flight_since = now() "
        "WHERE conversation_id = :c",
        t=in_flight,
        c=busy,
    )

    assert (await prune(db, BUFFER_RETENTION))["messages"] >= 3

    turns_left = {
        r[0]
        for r in await run(
            db, "SELECT turn_id FROM turns WHERE conversation_id IN (:a, :b)", a=done, b=busy
        )
    }
    assert turns_left == {recent_done, in_flight}
    assert old_done not in turns_left
    left = await run(
        db,
        "SELECT turn_id, count(*) FROM messages WHERE conversation_id IN (:a, :b) GROUP BY turn_id",
        a=done,
        b=busy,
    )
    assert {r[0]: r[1] for r in left} == {recent_done: 1, in_flight: 2, None: 1}


async def test_sender_forgets_finished_messages_and_closed_windows(
    dbs: dict[str, Database],
) -> None:
    db = dbs["sender"]
    tag = uuid.uuid4().hex
    rows = {
        "old-delivered": (OLD, "delivered"),
        "old-failed": (OLD, "failed"),
        "old-queued": (OLD, "queued"),
        "old-calling": (OLD, "calling"),
        "new-read": (RECENT, "read"),
    }
    for name, (age, status) in rows.items():
        await run(
            db,
            "INSERT INTO messages (command_id, phone_number_id, recipient, conversation_id, "
            "author, kind, command, request_event, status, updated_at) VALUES "
            "(:id, '1', '2', 'c', 'ai', 'text', '{}', 'e', :status, "
            "now() - CAST(:age AS interval))",
            age=age,
            id=f"{tag}-{name}",
            status=status,
        )
    window = "INSERT INTO windows VALUES ('1', :c, now() - CAST(:age AS interval))"
    await run(db, window, c=f"old-{tag}", age=OLD)
    await run(db, window, c=f"new-{tag}", age=RECENT)

    await prune(db, SENDER_RETENTION)

    left = await run(db, "SELECT command_id FROM messages WHERE command_id LIKE :t", t=f"{tag}-%")
    assert sorted(r[0] for r in left) == [
        f"{tag}-new-read",
        f"{tag}-old-calling",
        f"{tag}-old-queued",
    ]
    windows = await run(db, "SELECT customer FROM windows WHERE customer LIKE :t", t=f"%{tag}")
    assert [r[0] for r in windows] == [f"new-{tag}"]


async def test_agent_forgets_its_old_turn_log_and_operator_messages(
    dbs: dict[str, Database],
) -> None:
    db = dbs["agent"]
    old, recent = uuid.uuid4(), uuid.uuid4()
    for turn_id, age in ((old, OLD), (recent, RECENT)):
        await run(
            db,
            "INSERT INTO turns (turn_id, conversation_id, sequence, mode, epoch, outcome, "
            "outputs, completed_at) VALUES (:t, 'c', 1, 'ai', 0, 'answered', 1, "
            "now() - CAST(:age AS interval))",
            age=age,
            t=turn_id,
        )

    # carried into a thread by a turn (turn_id set), or still waiting for one (NULL)
    for key, age, carried in (
        ("old-op", OLD, old),
        ("recent-op", RECENT, recent),
        ("old-waiting-op", OLD, None),
    ):
        await run(
            db,
            "INSERT INTO operator_messages (conversation_id, message_key, text, sent_at, "
            "turn_id) VALUES ('c', :k, '(operator) hi', now() - CAST(:age AS interval), :t)",
            k=f"{key}-{old}",
            age=age,
            t=carried,
        )

    await prune(db, AGENT_RETENTION)

    left = await run(db, "SELECT turn_id FROM turns WHERE turn_id IN (:a, :b)", a=old, b=recent)
    assert [r[0] for r in left] == [recent]
    kept = await run(
        db,
        "SELECT message_key FROM operator_messages WHERE message_key LIKE :k ORDER BY 1",
        k=f"%-{old}",
    )
    # an old message no turn has carried stays: the customer may come back after months
    assert [r[0] for r in kept] == [f"old-waiting-op-{old}", f"recent-op-{old}"]


async def test_a_replica_skips_a_table_another_one_is_pruning(dbs: dict[str, Database]) -> None:
    db = dbs["agent"]
    turn_id = uuid.uuid4()
    await run(
        db,
        "INSERT INTO turns (turn_id, conversation_id, sequence, mode, epoch, outcome, "
        "outputs, completed_at) VALUES (:t, 'c', 1, 'ai', 0, 'answered', 1, "
        "now() - CAST(:age AS interval))",
        age=OLD,
        t=turn_id,
    )
    async with db.sessions() as session, session.begin():
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('prune:turns:agent'))"))
        assert (await prune(db, AGENT_RETENTION))["turns"] == 0
    assert (await prune(db, AGENT_RETENTION))["turns"] == 1


def test_retention_days_zero_keeps_everything_and_short_ones_are_refused(
    database_url: str,
) -> None:
    def settings(days: float) -> BaseServiceSettings:
        return BaseServiceSettings(database_url=database_url, baton_env="test", retention_days=days)

    def workers(days: float) -> list[str]:
        runtime = Runtime("x", settings(days), "agent")
        runtime.prune(AGENT_RETENTION)
        return [getattr(w, "name", type(w).__name__) for w in runtime.workers]

    assert "Retention agent" in workers(30)
    assert "Retention agent" not in workers(0)
    with pytest.raises(ValueError, match="RETENTION_DAYS must be 0"):
        settings(5)


async def test_operator_transcript_retention_forgets_old_messages_and_media(
    dbs: dict[str, Database],
) -> None:
    db = dbs["operator"]
    conversation = f"conv-{uuid.uuid4().hex}"
    for text_, age in (("old one", OLD), ("old two", OLD), ("recent", RECENT)):
        await run(
            db,
            "INSERT INTO messages (conversation_id, direction, author, kind, text, occurred_at) "
            "VALUES (:c, 'in', 'customer', 'text', :t, now() - CAST(:age AS interval))",
            c=conversation,
            t=text_,
            age=age,
        )
    for media_id, status, age in (
        ("old-done", "downloaded", OLD),
        ("old-due", "pending", OLD),
        ("recent", "downloaded", RECENT),
    ):
        await run(
            db,
            "INSERT INTO media (media_id, conversation_id, wa_message_id, kind, status, "
            "created_at) VALUES (:m, :c, 'wamid.x', 'image', :s, now() - CAST(:age AS interval))",
            m=f"{conversation}-{media_id}",
            c=conversation,
            s=status,
            age=age,
        )

    await prune(db, TRANSCRIPT_RETENTION)

    texts = await run(db, "SELECT text FROM messages WHERE conversation_id = :c", c=conversation)
    assert [r[0] for r in texts] == ["recent"]
    media = await run(db, "SELECT media_id FROM media WHERE conversation_id = :c", c=conversation)
    assert sorted(r[0] for r in media) == [f"{conversation}-old-due", f"{conversation}-recent"]


def test_transcript_retention_is_off_by_default_and_outlasts_late_statuses(
    database_url: str,
) -> None:
    def settings(**values: Any) -> OperatorApiSettings:
        return OperatorApiSettings(database_url=database_url, baton_env="test", **values)

    assert settings().transcript_retention_days == 0
    assert settings(OPERATOR_API_TRANSCRIPT_RETENTION_DAYS=90).transcript_retention_days == 90
    with pytest.raises(ValueError, match="at least 31"):
        settings(OPERATOR_API_TRANSCRIPT_RETENTION_DAYS=10)


# --- kept by the retention jobs (from the operations review) ----------------------------


def pruned_metric(schema: str, table: str) -> float:
    return (
        REGISTRY.get_sample_value("baton_pruned_rows_total", {"schema": schema, "table": table})
        or 0.0
    )


async def test_buffer_retention_works_through_batches_and_keeps_the_turn_in_flight(
    dbs: dict[str, Database],
) -> None:
    db = dbs["buffer"]
    conversation = f"conv-{uuid.uuid4().hex}"
    await run(
        db,
        "INSERT INTO conversations (conversation_id, phone_number_id, customer_id) "
        "VALUES (:c, '1', '2')",
        c=conversation,
    )
    # A long-done turn with more messages than a batch, a stuck turn given up on long ago,
    # and the conversation's current turn in flight, released 40 days ago (agents down).
    done = await _buffer_turn(db, conversation, OLD, messages=5, done=True)
    given_up = await _buffer_turn(db, conversation, OLD, messages=1, done=False, timed_out=True)
    in_flight = await _buffer_turn(db, conversation, OLD, messages=3, done=False)
    await run(
        db,
        "UPDATE conversations SET in_flight_turn_id = :t, in_flight_since = now() "
        "WHERE conversation_id = :c",
        t=in_flight,
        c=conversation,
    )
    before = pruned_metric("buffer", "messages")

    deleted = (await prune(db, BUFFER_RETENTION, batch=2))["messages"]

    assert deleted >= 6
    assert pruned_metric("buffer", "messages") - before == deleted
    turns = await run(db, "SELECT turn_id FROM turns WHERE conversation_id = :c", c=conversation)
    assert {r[0] for r in turns} == {in_flight}
    left = await run(
        db,
        "SELECT turn_id, count(*) FROM messages WHERE conversation_id = :c GROUP BY turn_id",
        c=conversation,
    )
    assert {r[0]: r[1] for r in left} == {in_flight: 3}
    assert done not in {r[0] for r in left}
    assert given_up not in {r[0] for r in left}
    conv = await run(
        db, "SELECT in_flight_turn_id FROM conversations WHERE conversation_id = :c", c=conversation
    )
    assert conv == [(in_flight,)]  # the conversation row is kept


async def test_sender_retention_keeps_every_message_still_to_be_sent(
    dbs: dict[str, Database],
) -> None:
    db = dbs["sender"]
    tag = uuid.uuid4().hex
    rows = [  # (command, part, status)
        ("long", 0, "sent"),  # a long text: its first part went out 40 days ago ...
        ("long", 1, "queued"),  # ... its second is still waiting (paced, window grace ...)
        ("claimed", 0, "claimed"),
        ("suppressed", 0, "suppressed"),
        ("played", 0, "played"),
        ("sent", 0, "sent"),
    ]
    for command, part, status in rows:
        await run(
            db,
            "INSERT INTO messages (command_id, part, parts, phone_number_id, recipient, "
            "conversation_id, author, kind, command, request_event, status, updated_at) VALUES "
            "(:id, :part, 2, '1', '2', 'c', 'ai', 'text', '{}', 'e', :status, "
            "now() - CAST(:age AS interval))",
            id=f"{tag}-{command}", part=part, status=status, age=OLD,
        )  # fmt: skip
    await prune(db, SENDER_RETENTION, batch=1)
    left = await run(
        db,
        "SELECT command_id, part FROM messages WHERE command_id LIKE :t ORDER BY 1, 2",
        t=f"{tag}-%",
    )
    assert [tuple(r) for r in left] == [(f"{tag}-claimed", 0), (f"{tag}-long", 1)]


async def test_agent_retention_keeps_operator_messages_no_turn_has_carried_yet(
    dbs: dict[str, Database],
) -> None:
    # An operator wrote 40 days ago and handed back; the customer has not written since, so
    # no turn carried the message into the thread. The agent README: it is kept "until the
    # conversation's next turn carries it into the thread ... so after handback the model
    # knows what was said and promised". The retention deletes it by age alone.
    db = dbs["agent"]
    conversation = f"conv-{uuid.uuid4().hex}"
    carried_by = uuid.uuid4()
    for key, turn in (("carried", carried_by), ("waiting", None)):
        await run(
            db,
            "INSERT INTO operator_messages (conversation_id, message_key, text, sent_at, turn_id) "
            "VALUES (:c, :k, '(operator) we will refund you', now() - CAST(:age AS interval), :t)",
            c=conversation, k=f"{key}-{conversation}", age=OLD, t=turn,
        )  # fmt: skip
    await prune(db, AGENT_RETENTION)
    left = await run(
        db, "SELECT message_key FROM operator_messages WHERE conversation_id = :c", c=conversation
    )
    assert [r[0] for r in left] == [f"waiting-{conversation}"]
