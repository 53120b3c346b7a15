"""Buffer benchmark: release lateness with many conversations open at once, and throughput.

The buffer runs as its own process (`baton-buffer serve`, as `make run` runs it) against real
PostgreSQL and Redis, in a private database and under a private Redis prefix. This process
publishes `MessageReceived` events straight onto `wa.inbound` and plays the agent: it reads
every `TurnReady` from `conv.turns` and answers with `TurnCompleted` on `conv.turns.done`.

Two phases:

- **lateness**: `--conversations` conversations each send a burst of `--burst` messages; the
  messages go out in rounds (message 1 of every conversation, then message 2, ...) at `--rate`
  messages per second, so every conversation has an open burst at once. Per turn, lateness is
  the release time minus the closing time the rules give for the turn's messages (arrival
  times as the buffer recorded them): once from the `turns` table (`released_at`, the
  buffer's own clock when it took the turn) and once from the `TurnReady` stream entry (when
  the outbox relay published it: what the agent sees).
- **throughput**: quiet time 0; every message of every conversation is published at once and
  the clock runs until the last message has left in a `TurnReady`.

`python -m bench buffer_release [--phase lateness|throughput|both] [--profile DIR]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from baton_buffer.rules import Rules, closing
from baton_devtools import infra as infra_mod
from baton_shared.db.engine import async_url
from baton_shared.events import (
    InboundMessage,
    MessageReceived,
    MessageType,
    TurnCompleted,
    TurnOutcome,
    conversation_id_for,
)
from baton_shared.streams import names
from baton_shared.streams.bus import entry_fields, stream_fields
from baton_shared.testing import delete_prefix, new_prefix
from bench.measure import (
    cpu_seconds,
    infra_and_database,
    machine_busy_seconds,
    machine_line,
    percentile,
)

ROOT = Path(__file__).resolve().parents[1]
AGENT_GROUP = "bench-agent"
COMPLETED = TurnCompleted.model_fields["event_type"].default


def _entry_seconds(entry_id: str) -> float:
    """When Redis appended a stream entry (its id's millisecond part), in epoch seconds."""
    return int(entry_id.split("-", 1)[0]) / 1000


@dataclass
class Phase:
    """One run of the buffer process and what this process saw of it."""

    name: str
    quiet: float
    phone_number_id: str
    conversations: int
    burst: int
    published: dict[str, float] = field(default_factory=dict)  # message id -> entry time
    turns: dict[str, float] = field(default_factory=dict)  # turn id -> TurnReady entry time
    carried: int = 0  # messages seen in TurnReady events
    started: float = 0.0
    finished: float = 0.0
    cpu_seconds: float = 0.0  # the buffer process's CPU time (user + system) over the phase

    @property
    def total(self) -> int:
        return self.conversations * self.burst


def _messages(phase: Phase, round_: int) -> list[tuple[str, dict[str, str]]]:
    """WhatsApp id and stream fields of message `round_` of every conversation of the phase."""
    now = datetime.now(UTC)
    out = []
    for n in range(phase.conversations):
        wa_id = f"{phase.phone_number_id[-4:]}{n:08d}"
        message = InboundMessage(
            message_id=f"wamid.bench.{phase.name}.{n}.{round_}",
            phone_number_id=phase.phone_number_id,
            wa_id=wa_id,
            timestamp=now,
            type=MessageType.TEXT,
            text=f"message {round_} of a burst",
        )
        event = MessageReceived.create(
            message,
            producer="bench",
            conversation_id=conversation_id_for(phase.phone_number_id, wa_id),
        )
        out.append((message.message_id, entry_fields(event)))
    return out


async def _publish(
    redis: Redis, key: str, phase: Phase, entries: list[tuple[str, dict[str, str]]]
) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for _, fields in entries:
            pipe.xadd(key, fields)  # type: ignore[arg-type]
        ids = await pipe.execute()
    for (message_id, _), entry_id in zip(entries, ids, strict=True):
        phase.published[message_id] = _entry_seconds(str(entry_id))


async def _feed(
    redis: Redis,
    prefix: str,
    phase: Phase,
    rounds: list[list[tuple[str, dict[str, str]]]],
    rate: float | None,
) -> None:
    """Publish every burst: at once (rate None) or round by round at `rate` messages/s."""
    key = f"{prefix}{names.WA_INBOUND}"
    phase.started = time.time()
    chunk = 500
    sent = 0
    for entries in rounds:
        for i in range(0, len(entries), chunk):
            await _publish(redis, key, phase, entries[i : i + chunk])
            sent += len(entries[i : i + chunk])
            if rate:
                ahead = phase.started + sent / rate - time.time()
                if ahead > 0:
                    await asyncio.sleep(ahead)


def completion_fields(ready: dict[str, Any]) -> dict[str, str]:
    """The stream fields of the `TurnCompleted` answering a `TurnReady` body.

    Written out, not built through the models: the stand-in agent shares the buffer's two
    cores, and `TurnCompleted.create` plus its serialisation cost it ~40 us per turn, a tenth
    of the machine at 5,000 turns/s. The buffer validates every body it reads, so a field
    wrong here fails the run (the turns would never be freed); a unit test holds the two
    equal (tests/unit/buffer/test_bench_completion.py)."""
    turn = ready["payload"]
    event_id = str(uuid.uuid4())
    body = {
        "event_id": event_id,
        "event_type": COMPLETED,
        "schema_version": 1,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "producer": "bench",
        "conversation_id": ready["conversation_id"],
        "correlation_id": ready["correlation_id"],
        "causation_id": ready["event_id"],
        "traceparent": ready["traceparent"],
        "payload": {
            "turn_id": turn["turn_id"],
            "phone_number_id": turn["phone_number_id"],
            "wa_id": turn["wa_id"],
            "outcome": TurnOutcome.ANSWERED.value,
            "outputs": 0,
        },
    }
    return stream_fields(
        event_id, COMPLETED, 1, ready["conversation_id"], orjson.dumps(body).decode()
    )


async def _agent(redis: Redis, prefix: str, phase: Phase, stop: asyncio.Event) -> None:
    """Answer every `TurnReady` at once with `TurnCompleted`; stop when every message is out."""
    turns_key = f"{prefix}{names.CONV_TURNS}"
    done_key = f"{prefix}{names.CONV_TURNS_DONE}"
    while not stop.is_set():
        reply: Any = await redis.xreadgroup(
            AGENT_GROUP, "bench", {turns_key: ">"}, count=1000, block=100
        )
        completions = []
        ids = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                ids.append(entry_id)
                ready = orjson.loads(fields["body"])
                phase.turns[ready["payload"]["turn_id"]] = _entry_seconds(entry_id)
                phase.carried += len(ready["payload"]["messages"])
                completions.append(completion_fields(ready))
        if ids:
            async with redis.pipeline(transaction=False) as pipe:
                for completion in completions:
                    pipe.xadd(done_key, completion)  # type: ignore[arg-type]
                pipe.xack(turns_key, AGENT_GROUP, *ids)
                await pipe.execute()
        if phase.carried >= phase.total:
            phase.finished = max(phase.turns.values())
            return


class BufferProcess:
    """`baton-buffer serve` on a free port, optionally under `py-spy record`."""

    def __init__(self, env: dict[str, str], profile: Path | None, name: str) -> None:
        self.port = infra_mod.free_port()
        exe = str(Path(sys.executable).parent / "baton-buffer")
        argv = [exe, "serve"]
        self.profiled = profile is not None
        if profile is not None:
            spy = shutil.which("py-spy")
            if spy is None:
                raise SystemExit("--profile needs py-spy: uv run --with py-spy python -m bench ...")
            profile.mkdir(parents=True, exist_ok=True)
            out = profile / f"buffer-{name}.txt"  # collapsed stacks (flamegraph.pl, speedscope)
            argv = [spy, "record", "-r", "200", "-f", "raw", "-o", str(out), "--", *argv]
        # Output to a file, not a pipe nobody reads while it runs: a chatty process would
        # fill the pipe and block on its next log line.
        logs = ROOT / ".data" / "bench-buffer"
        logs.mkdir(parents=True, exist_ok=True)
        self.log = logs / f"buffer-{name}.log"
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(
                argv,
                env={**os.environ, **env, "BUFFER_PORT": str(self.port)},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"baton-buffer exited: {self.log.read_text()[-2000:]}")
                try:
                    got = await client.get(f"http://127.0.0.1:{self.port}/health/ready")
                    if got.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError("baton-buffer not ready after 60 s")

    async def lateness_histogram(self) -> str:
        """The `baton_buffer_release_lateness_seconds` share under 200 ms, from /metrics."""
        async with httpx.AsyncClient(timeout=5, follow_redirects=True) as client:
            got = await client.get(f"http://127.0.0.1:{self.port}/metrics")
        buckets = {}
        for line in got.text.splitlines():
            if line.startswith("baton_buffer_release_lateness_seconds_bucket"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                buckets[le] = float(line.rsplit(" ", 1)[1])
        total = buckets.get("+Inf", 0.0)
        if not total:
            return "histogram empty"
        return f"histogram: {buckets.get('0.2', 0) / total:.1%} of {total:.0f} releases <= 200 ms"

    def server_pid(self) -> int:
        """The `baton-buffer serve` process (under py-spy: its child)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = children.read_text().split() if self.profiled and children.exists() else []
        return int(pids[0]) if pids else self.proc.pid

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the buffer process has used so far."""
        return cpu_seconds(self.server_pid())

    def stop(self) -> None:
        # SIGTERM to the server (under py-spy: its child; py-spy then writes its profile)
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = children.read_text().split() if self.profiled and children.exists() else []
        for pid in pids or [str(self.proc.pid)]:
            os.kill(int(pid), signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def run_phase(
    phase: Phase,
    *,
    database_url: str,
    redis_url: str,
    rate: float | None,
    profile: Path | None,
    replicas: int = 1,
) -> None:
    """Start the buffer replicas, feed them the phase's bursts, play the agent until every
    message is out."""
    prefix = new_prefix()
    redis = Redis.from_url(redis_url, decode_responses=True)
    with contextlib.suppress(ResponseError):
        await redis.xgroup_create(f"{prefix}{names.CONV_TURNS}", AGENT_GROUP, id="0", mkstream=True)
    env = {
        "BATON_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "BUFFER_QUIET_SECONDS": str(phase.quiet),
        "LOG_LEVEL": "WARNING",
    }
    buffers = [BufferProcess(env, profile, f"{phase.name}-{n}") for n in range(replicas)]
    try:
        await asyncio.gather(*(buffer.ready() for buffer in buffers))
        stop = asyncio.Event()
        # Built before the clock and the CPU counters run: the events are the feed's input.
        rounds = [_messages(phase, r) for r in range(phase.burst)]
        cpu_before = sum(buffer.cpu_seconds() for buffer in buffers)
        machine_before, own_before = machine_busy_seconds(), time.process_time()
        agent = asyncio.create_task(_agent(redis, prefix, phase, stop))
        await _feed(redis, prefix, phase, rounds, rate)
        budget = 60 + phase.total / 1000
        try:
            await asyncio.wait_for(agent, timeout=budget)
        except TimeoutError:
            stop.set()
            print(
                f"  {phase.name}: only {phase.carried}/{phase.total} messages out after {budget:.0f} s"
            )
        phase.cpu_seconds = sum(buffer.cpu_seconds() for buffer in buffers) - cpu_before
        machine = machine_busy_seconds() - machine_before
        own = time.process_time() - own_before
        per_k = 1000 / max(1, phase.carried)
        print(
            f"  {phase.name}: buffer CPU {phase.cpu_seconds:.2f} s, "
            f"{phase.cpu_seconds * per_k:.3f} s per 1,000 messages"
        )
        print(
            f"  {phase.name}: whole machine busy {machine:.2f} s "
            f"({machine * per_k:.3f} s per 1,000 messages): buffer {phase.cpu_seconds:.2f}, "
            f"this bench (feeder + stand-in agent) {own:.2f}, everything else "
            f"(PostgreSQL, Redis, other tenants) {machine - phase.cpu_seconds - own:.2f}"
        )
        for buffer in buffers:
            print(f"  {phase.name}: {await buffer.lateness_histogram()}")
    finally:
        for buffer in buffers:
            buffer.stop()
        await delete_prefix(redis, prefix)  # the Redis server is shared: leave nothing behind
        await redis.aclose()


async def lateness_report(phase: Phase, database_url: str, rules: Rules) -> None:
    """Per-turn lateness from the turns table and from the published `TurnReady` entries."""
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT t.turn_id, t.closed_by, t.released_at, "
                        "array_agg(m.arrived_at ORDER BY m.arrival_seq) AS arrivals, "
                        "array_agg(m.message_id ORDER BY m.arrival_seq) AS ids "
                        "FROM buffer.turns t JOIN buffer.messages m ON m.turn_id = t.turn_id "
                        "JOIN buffer.conversations c ON c.conversation_id = t.conversation_id "
                        "WHERE c.phone_number_id = :p GROUP BY t.turn_id"
                    ),
                    {"p": phase.phone_number_id},
                )
            ).all()
    finally:
        await engine.dispose()
    released, published, ingest = [], [], []
    closed_by: dict[str, int] = {}
    for row in rows:
        arrivals = [a.timestamp() for a in row.arrivals]
        due = closing(rules, arrivals).due
        released.append(row.released_at.timestamp() - due)
        if str(row.turn_id) in phase.turns:
            published.append(phase.turns[str(row.turn_id)] - due)
        closed_by[row.closed_by] = closed_by.get(row.closed_by, 0) + 1
        for message_id, arrived in zip(row.ids, arrivals, strict=True):
            ingest.append(arrived - phase.published[message_id])

    def line(label: str, values: list[float]) -> str:
        ms = [v * 1000 for v in values]
        return (
            f"  {label}: p50 {percentile(ms, 50):.1f} ms  p99 {percentile(ms, 99):.1f} ms  "
            f"max {max(ms):.1f} ms  mean {statistics.mean(ms):.1f} ms"
        )

    print(f"  turns: {len(rows)} ({', '.join(f'{k} {v}' for k, v in sorted(closed_by.items()))})")
    print(line("lateness, released_at - due (turns table)", released))
    print(line("lateness, TurnReady published - due (stream)", published))
    print(line("ingest lag, published on wa.inbound -> recorded", ingest))


async def main(argv: list[str]) -> None:
    """Run the phases on a private database and print the figures."""
    parser = argparse.ArgumentParser(prog="bench buffer_release")
    parser.add_argument("--phase", choices=("lateness", "throughput", "both"), default="both")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=3, help="messages per conversation")
    parser.add_argument("--rate", type=float, default=3000, help="lateness: messages/s fed")
    parser.add_argument("--quiet", type=float, default=4.0, help="lateness: quiet seconds")
    parser.add_argument("--profile", type=Path, help="write py-spy flame graphs here")
    parser.add_argument("--replicas", type=int, default=1, help="buffer processes")
    args = parser.parse_args(argv)

    print(
        f"buffer benchmark, {args.conversations} conversations x {args.burst} messages, "
        f"{args.replicas} buffer replica(s)"
    )
    print(machine_line())
    with infra_and_database() as (url, redis_url):
        if args.phase in ("lateness", "both"):
            phase = Phase("lateness", args.quiet, "100000000001", args.conversations, args.burst)
            print(
                f"lateness: quiet {args.quiet} s, fed at {args.rate:.0f} messages/s "
                "in rounds (every conversation open at once)"
            )
            await run_phase(
                phase,
                database_url=url,
                redis_url=redis_url,
                rate=args.rate,
                profile=args.profile,
                replicas=args.replicas,
            )
            rules = Rules(args.quiet, 15.0, 20, 120.0)  # the buffer's defaults but quiet
            await lateness_report(phase, url, rules)
        if args.phase in ("throughput", "both"):
            phase = Phase("throughput", 0.0, "100000000002", args.conversations, args.burst)
            print("throughput: quiet 0, every message published at once")
            await run_phase(
                phase,
                database_url=url,
                redis_url=redis_url,
                rate=None,
                profile=args.profile,
                replicas=args.replicas,
            )
            if phase.finished:
                seconds = phase.finished - phase.started
                print(
                    f"  {phase.total} messages in {len(phase.turns)} turns out in "
                    f"{seconds:.2f} s: {phase.total / seconds:.0f} messages/s "
                    f"({len(phase.turns) / seconds:.0f} turns/s)"
                )
