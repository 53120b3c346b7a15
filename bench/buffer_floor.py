"""The buffer's floor: the least work issue 4's throughput phase asks for, without Baton.

The same feed and stand-in agent as `buffer_release`'s throughput phase (10,000
conversations x 3 messages, published at once, quiet time 0; every `TurnReady` answered at
once with `TurnCompleted`), against a minimal buffer written straight on asyncpg and
redis-py, in `--processes` worker processes on uvloop (as `baton-buffer serve` runs). Each
worker reads both streams and per read batch runs one transaction of a few statements:

- `wa.inbound`: record the messages once each (unique WhatsApp id); claim the conversations
  with no turn in flight (one upsert); give their pending messages a turn; record the turns.
- `conv.turns.done`: record the outcomes; free the conversations; claim and fill the next
  turns of those with messages pending.

Then it publishes the `TurnReady` events (JSON written out, no models) and acknowledges the
batch. It skips everything a correct buffer needs beyond that: no outbox (a crash after a
commit loses the turn's event), no publish de-duplication, no timers (quiet 0 needs none),
no closing rules, no stuck-turn timeout, no metrics, no validation of what it reads. Its rate
is therefore above what any buffer meeting the issue can reach on this machine: if it is
below the goal of 5,000 messages/s, the goal cannot be met here with PostgreSQL and Redis
doing this work, whatever the buffer's own code costs.

`python -m bench buffer_floor [--processes 2] [--conversations 10000] [--burst 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import uvloop
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from baton_shared.events import TurnReady
from baton_shared.streams import names
from baton_shared.streams.bus import stream_fields
from baton_shared.testing import delete_prefix, new_prefix
from bench.buffer_release import AGENT_GROUP, ROOT, Phase, _agent, _feed, _messages
from bench.measure import cpu_seconds, infra_and_database, machine_busy_seconds, machine_line

GOAL_MESSAGES_PER_SECOND = 5000
GROUP = "floor"
READY = TurnReady.model_fields["event_type"].default

SCHEMA = """
CREATE SCHEMA floor;
CREATE TABLE floor.conversations (
    conversation_id text PRIMARY KEY,
    phone_number_id text NOT NULL,
    customer_id text NOT NULL,
    last_sequence int NOT NULL DEFAULT 0,
    in_flight_turn_id uuid
);
CREATE TABLE floor.messages (
    message_id text PRIMARY KEY,
    conversation_id text NOT NULL,
    arrival_seq bigserial,
    arrived_at timestamptz NOT NULL,
    payload jsonb NOT NULL,
    turn_id uuid
);
CREATE INDEX messages_pending ON floor.messages (conversation_id) WHERE turn_id IS NULL;
CREATE TABLE floor.turns (
    turn_id uuid PRIMARY KEY,
    conversation_id text NOT NULL,
    sequence int NOT NULL,
    message_count int NOT NULL,
    released_at timestamptz NOT NULL,
    completed_at timestamptz,
    outcome text
);
"""

_RECORD = """
INSERT INTO floor.messages (message_id, conversation_id, arrived_at, payload)
SELECT m, c, now(), CAST(p AS jsonb)
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(m, c, p, n) ORDER BY n
ON CONFLICT DO NOTHING
"""

# Create the conversations not seen before and claim those with no turn in flight, in key
# order (the caller sorts), so that two workers cannot deadlock.
_UPSERT_AND_CLAIM = """
INSERT INTO floor.conversations AS c
    (conversation_id, phone_number_id, customer_id, last_sequence, in_flight_turn_id)
SELECT i, p, w, 1, gen_random_uuid() FROM unnest($1::text[], $2::text[], $3::text[]) AS u(i, p, w)
ON CONFLICT (conversation_id) DO UPDATE
    SET last_sequence = c.last_sequence + 1, in_flight_turn_id = gen_random_uuid()
    WHERE c.in_flight_turn_id IS NULL
RETURNING conversation_id, phone_number_id, customer_id, last_sequence, in_flight_turn_id
"""

_LOCK = """
SELECT conversation_id FROM floor.conversations
WHERE conversation_id = ANY($1::text[]) ORDER BY conversation_id FOR UPDATE
"""

# Claim the next turn of freed conversations that have messages pending.
_CLAIM_PENDING = """
UPDATE floor.conversations c
SET last_sequence = c.last_sequence + 1, in_flight_turn_id = gen_random_uuid()
WHERE c.conversation_id = ANY($1::text[]) AND c.in_flight_turn_id IS NULL
AND EXISTS (SELECT 1 FROM floor.messages m
            WHERE m.conversation_id = c.conversation_id AND m.turn_id IS NULL)
RETURNING conversation_id, phone_number_id, customer_id, last_sequence, in_flight_turn_id
"""

_FILL = """
UPDATE floor.messages m SET turn_id = c.in_flight_turn_id
FROM floor.conversations c
WHERE c.conversation_id = ANY($1::text[]) AND m.conversation_id = c.conversation_id
AND m.turn_id IS NULL
RETURNING m.conversation_id, m.arrival_seq, CAST(m.payload AS text)
"""

_TURNS = """
INSERT INTO floor.turns (turn_id, conversation_id, sequence, message_count, released_at)
SELECT * , now() FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[])
"""

_COMPLETE = """
UPDATE floor.turns t SET completed_at = now(), outcome = r.o
FROM unnest($1::uuid[], $2::text[]) AS r(t, o)
WHERE t.turn_id = r.t AND t.completed_at IS NULL
RETURNING t.conversation_id
"""

_FREE = """
UPDATE floor.conversations SET in_flight_turn_id = NULL
WHERE conversation_id = ANY($1::text[]) AND in_flight_turn_id = ANY($2::uuid[])
"""


def _ready_fields(
    claim: asyncpg.Record, payloads: list[str], cause: dict[str, Any]
) -> dict[str, str]:
    """The stream fields of a `TurnReady` for a claimed conversation and its messages."""
    event_id = str(uuid.uuid4())
    turn = (
        f'{{"turn_id":"{claim["in_flight_turn_id"]}",'
        f'"phone_number_id":{json.dumps(claim["phone_number_id"])},'
        f'"wa_id":{json.dumps(claim["customer_id"])},"sequence":{claim["last_sequence"]},'
        f'"closed_by":"quiet","messages":[{",".join(payloads)}]}}'
    )
    head = orjson.dumps(
        {
            "event_id": event_id,
            "event_type": READY,
            "schema_version": 1,
            "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "producer": "floor",
            "conversation_id": claim["conversation_id"],
            "correlation_id": cause["correlation_id"],
            "causation_id": cause["event_id"],
            "traceparent": cause["traceparent"],
        }
    ).decode()
    body = f'{head[:-1]},"payload":{turn}}}'
    return stream_fields(event_id, READY, 1, claim["conversation_id"], body)


class Floor:
    """One worker's minimal buffer."""

    def __init__(self, db: asyncpg.Pool, redis: Redis, prefix: str) -> None:
        self.db = db
        self.redis = redis
        self.inbound = f"{prefix}{names.WA_INBOUND}"
        self.turns = f"{prefix}{names.CONV_TURNS}"
        self.done = f"{prefix}{names.CONV_TURNS_DONE}"
        self.causes: dict[str, dict[str, Any]] = {}  # conversation -> its latest message's event

    async def _fill(
        self, conn: asyncpg.Connection, claims: list[asyncpg.Record]
    ) -> list[dict[str, str]]:
        """Give the claimed conversations' pending messages their turns; the events."""
        if not claims:
            return []
        ids = [c["conversation_id"] for c in claims]
        pending: dict[str, list[tuple[int, str]]] = {}
        for row in await conn.fetch(_FILL, ids):
            pending.setdefault(row[0], []).append((row[1], row[2]))
        turns = [c for c in claims if c["conversation_id"] in pending]
        empty = [c for c in claims if c["conversation_id"] not in pending]
        if empty:  # claimed for messages recorded before (repeats): nothing to release
            await conn.execute(
                _FREE,
                [c["conversation_id"] for c in empty],
                [c["in_flight_turn_id"] for c in empty],
            )
        await conn.execute(
            _TURNS,
            [c["in_flight_turn_id"] for c in turns],
            [c["conversation_id"] for c in turns],
            [c["last_sequence"] for c in turns],
            [len(pending[c["conversation_id"]]) for c in turns],
        )
        out = []
        for claim in turns:
            messages = sorted(pending[claim["conversation_id"]])
            cause = self.causes.get(claim["conversation_id"]) or {
                "event_id": str(uuid.uuid4()),
                "correlation_id": str(uuid.uuid4()),
                "traceparent": None,
            }
            out.append(_ready_fields(claim, [p for _, p in messages], cause))
        return out

    async def _publish_and_ack(
        self, stream: str, group_ids: list[str], events: list[dict[str, str]]
    ) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for fields in events:
                pipe.xadd(self.turns, fields)  # type: ignore[arg-type]
            pipe.xack(stream, GROUP, *group_ids)
            await pipe.execute()

    async def on_inbound(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        convs: dict[str, tuple[str, str]] = {}
        message_ids, conversation_ids, payloads = [], [], []
        for _, fields in entries:
            event = orjson.loads(fields["body"])
            message = event["payload"]
            conversation_id = event["conversation_id"]
            convs.setdefault(conversation_id, (message["phone_number_id"], message["wa_id"]))
            self.causes[conversation_id] = event
            message_ids.append(message["message_id"])
            conversation_ids.append(conversation_id)
            payloads.append(orjson.dumps(message).decode())
        keys = sorted(convs)
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute(_RECORD, message_ids, conversation_ids, payloads)
            claims = await conn.fetch(
                _UPSERT_AND_CLAIM, keys, [convs[k][0] for k in keys], [convs[k][1] for k in keys]
            )
            events = await self._fill(conn, claims)
        await self._publish_and_ack(self.inbound, [e for e, _ in entries], events)

    async def on_done(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        turn_ids, outcomes = [], []
        for _, fields in entries:
            payload = orjson.loads(fields["body"])["payload"]
            turn_ids.append(payload["turn_id"])
            outcomes.append(payload["outcome"])
        async with self.db.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_COMPLETE, turn_ids, outcomes)
            keys = sorted({r[0] for r in rows})
            await conn.execute(_LOCK, keys)
            await conn.execute(_FREE, keys, turn_ids)
            claims = await conn.fetch(_CLAIM_PENDING, keys)
            events = await self._fill(conn, claims)
        await self._publish_and_ack(self.done, [e for e, _ in entries], events)

    async def consume(self, stream: str, handle: Any, name: str) -> None:
        while True:
            reply: Any = await self.redis.xreadgroup(
                GROUP, name, {stream: ">"}, count=200, block=100
            )
            for _stream, entries in reply or []:
                await handle(entries)


async def _worker(database_url: str, redis_url: str, prefix: str, name: str) -> None:
    """One worker process: say `ready`, consume both streams until told `exit`."""
    db = await asyncpg.create_pool(database_url, min_size=4, max_size=4)
    redis = Redis.from_url(redis_url, decode_responses=True)
    floor = Floor(db, redis, prefix)
    tasks = [
        asyncio.create_task(floor.consume(floor.inbound, floor.on_inbound, name)),
        asyncio.create_task(floor.consume(floor.inbound, floor.on_inbound, name)),
        asyncio.create_task(floor.consume(floor.done, floor.on_done, name)),
    ]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await redis.aclose()
    await db.close()


def _run_on_uvloop(work: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(work)


async def main(argv: list[str]) -> None:
    """Create the schema and streams, start the workers, feed, play the agent, report."""
    parser = argparse.ArgumentParser(prog="bench buffer_floor", description=__doc__)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=3, help="messages per conversation")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        work = _worker(args.database_url, args.redis_url, args.prefix, args.worker)
        await asyncio.to_thread(_run_on_uvloop, work)
        return

    print(
        f"buffer floor: {args.conversations} conversations x {args.burst} messages at once, "
        f"quiet 0, {args.processes} worker process(es), no Baton code"
    )
    print(machine_line())
    with infra_and_database() as (found_url, redis_url):
        url = found_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(SCHEMA)
        finally:
            await conn.close()
        prefix = new_prefix()
        redis = Redis.from_url(redis_url, decode_responses=True)
        for stream, group in (
            (names.WA_INBOUND, GROUP),
            (names.CONV_TURNS_DONE, GROUP),
            (names.CONV_TURNS, AGENT_GROUP),
        ):
            with contextlib.suppress(ResponseError):
                await redis.xgroup_create(f"{prefix}{stream}", group, id="0", mkstream=True)
        phase = Phase("floor", 0.0, "100000000003", args.conversations, args.burst)
        workers = []
        try:
            for n in range(args.processes):
                argv_ = [
                    sys.executable, "-m", "bench", "buffer_floor", "--worker", f"floor-{n}",
                    "--database-url", url, "--redis-url", redis_url, "--prefix", prefix,
                ]  # fmt: skip
                workers.append(
                    await asyncio.create_subprocess_exec(
                        *argv_,
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        cwd=ROOT,
                    )
                )
            for worker in workers:
                assert worker.stdout is not None
                line = await asyncio.wait_for(worker.stdout.readline(), timeout=120)
                if line.strip() != b"ready":
                    raise RuntimeError(f"worker did not start: {line!r}")
            rounds = [_messages(phase, r) for r in range(phase.burst)]
            stop = asyncio.Event()
            cpu_before = sum(cpu_seconds(w.pid) for w in workers)
            machine_before, own_before = machine_busy_seconds(), time.process_time()
            agent = asyncio.create_task(_agent(redis, prefix, phase, stop))
            await _feed(redis, prefix, phase, rounds, None)
            await asyncio.wait_for(agent, timeout=60 + phase.total / 1000)
            cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu_before
            machine = machine_busy_seconds() - machine_before
            own = time.process_time() - own_before
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write(b"exit\n")
                await worker.stdin.drain()
            for worker in workers:
                await asyncio.wait_for(worker.wait(), timeout=30)
        finally:
            for worker in workers:
                with contextlib.suppress(ProcessLookupError):
                    worker.kill()
                await worker.wait()
            await delete_prefix(redis, prefix)
            await redis.aclose()
    seconds = phase.finished - phase.started
    rate = phase.total / seconds
    per_k = 1000 / phase.total
    verdict = "meets" if rate >= GOAL_MESSAGES_PER_SECOND else "below"
    print(
        f"  {phase.total} messages in {len(phase.turns)} turns out in {seconds:.2f} s: "
        f"{rate:.0f} messages/s ({verdict} the goal of {GOAL_MESSAGES_PER_SECOND})"
    )
    print(
        f"  per 1,000 messages: workers {cpu * per_k:.3f} s CPU, this bench (feeder + "
        f"stand-in agent) {own * per_k:.3f} s, whole machine {machine * per_k:.3f} s, "
        f"everything else (PostgreSQL, Redis) {(machine - cpu - own) * per_k:.3f} s"
    )
