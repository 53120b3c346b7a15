"""Sender throughput: sustained messages per second to the WhatsApp emulator.

For each rate (default 1,000/s, WhatsApp's highest tier, then the default 80/s) this starts a
WhatsApp emulator ENFORCING that throughput (130429 over it) and a real `baton-sender serve`
with `WA_RATE_LIMIT_MPS` set to it, both as separate processes on 127.0.0.1, on a private
database and Redis prefix. It feeds `MessageRequested` commands for many customers straight
onto `wa.outbound` at 1.2x the rate (so the limiter, not the feed, sets the pace) and samples
the emulator's accepted count every second.

Figures: the sustained rate over the steady part of the run (after `--warmup` seconds), the
slowest and fastest one-second rates, whether it is within +-5% of the limit, and the
emulator's 130429 refusals (goal: zero).

    uv run python -m bench sender_throughput                  # 60 s at 1000/s, then at 80/s
    uv run python -m bench sender_throughput --duration 10    # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import socket
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis.asyncio import Redis
from sqlalchemy import text

from baton_shared.db import Database
from baton_shared.events import Author, MessageRequested, OutboundCommand, OutboundKind
from baton_shared.streams.bus import Bus, entry_fields
from baton_shared.testing import new_prefix
from bench.measure import cpu_seconds, infra_and_database, machine_line

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN = "bench-access-token"
PHONE_NUMBER_ID = "420123456789012"
FEED_FACTOR = 1.2


@dataclass
class PhaseResult:
    """What one rate's run measured."""

    limit: int
    duration: float
    sustained: float
    per_second: list[float]
    accepted: int
    refused: dict[str, int]
    cpu_us: dict[str, float]
    load: float

    @property
    def within(self) -> bool:
        """Sustained rate within +-5% of the limit."""
        return abs(self.sustained - self.limit) <= 0.05 * self.limit


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def process(
    args: list[str], env: dict[str, str], health: str, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start a process, wait for `health` to answer 200, terminate it on exit."""
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *args, env={**os.environ, **env}, stdout=sink, stderr=sink
        )
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                deadline = time.monotonic() + 60
                while True:
                    if proc.returncode is not None:
                        raise RuntimeError(f"{args[0]} exited early; see {log}")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(health)).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{args[0]} did not start; see {log}")
                    await asyncio.sleep(0.1)
            yield proc
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def drop_prefix(bus: Bus, prefix: str) -> None:
    """Delete the run's keys (tens of thousands of publish markers) in batches."""
    batch: list[str] = []
    async for key in bus.redis.scan_iter(match=f"{prefix}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            await bus.redis.unlink(*batch)
            batch.clear()
    if batch:
        await bus.redis.unlink(*batch)


def command(n: int, customers: int, run: str) -> MessageRequested:
    """The n-th command of a run: round-robin over `customers` customers."""
    payload = OutboundCommand(
        command_id=f"{run}-{n}",
        phone_number_id=PHONE_NUMBER_ID,
        to=f"5511{n % customers:09d}",
        author=Author.OPERATOR,
        kind=OutboundKind.TEXT,
        text=f"Your order {n} has shipped.",
    )
    return MessageRequested.create(payload, producer="bench")


async def feed(bus: Bus, rate: float, seconds: float, customers: int, stop: asyncio.Event) -> int:
    """Publish commands at `rate`/s for `seconds` (in 20 ms ticks); returns how many."""
    run = uuid.uuid4().hex[:8]
    sent = 0
    started = time.monotonic()
    while not stop.is_set():
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            break
        due = int(min(elapsed + 0.02, seconds) * rate) - sent
        if due > 0:
            events = [command(sent + i, customers, run) for i in range(due)]
            # One pipelined round trip per tick (the feed's own CPU is not what is measured,
            # and it shares the two cores with the sender and the emulator).
            await bus.publish_many([(e.stream, str(e.event_id), entry_fields(e)) for e in events])
            sent += due
        await asyncio.sleep(0.02)
    return sent


async def phase(
    limit: int, duration: float, warmup: float, *, database_url: str, redis_url: str, logs: Path
) -> PhaseResult:
    """Run the emulator and a sender at `limit` msg/s for `duration` s and measure."""
    prefix = new_prefix()
    db = Database(database_url, "sender", pool_size=1)
    async with db.session() as session:
        await session.execute(text("TRUNCATE messages, windows, inbox, outbox"))
        # Every customer wrote recently: their service windows are open (free-form allowed).
        await session.execute(
            text(
                "INSERT INTO windows (phone_number_id, customer, last_inbound_at) "
                "SELECT :number, '5511' || lpad(n::text, 9, '0'), now() "
                "FROM generate_series(0, :customers - 1) AS n"
            ),
            {"number": PHONE_NUMBER_ID, "customers": max(100, limit * 10)},
        )
    await db.dispose()
    wa_port, sender_port = free_port(), free_port()
    emulator_env = {
        "WA_ACCESS_TOKEN": TOKEN,
        "WA_EMULATOR_THROUGHPUT_MPS": str(limit),
        "INGRESS_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/webhook",
    }
    sender_env = {
        "BATON_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "SENDER_PORT": str(sender_port),
        "WA_GRAPH_URL": f"http://127.0.0.1:{wa_port}",
        "WA_ACCESS_TOKEN": TOKEN,
        "WA_RATE_LIMIT_MPS": str(limit),
        "LOG_LEVEL": "WARNING",
    }
    emulator_url = f"http://127.0.0.1:{wa_port}"
    customers = max(100, limit * 10)  # one message per customer every ~8 s: no pair pacing
    bus = Bus(
        Redis.from_url(redis_url, decode_responses=True),
        prefix=prefix,
        maxlen=1_000_000,
        dedupe_seconds=3600,  # publish markers outlive the run by an hour at most
    )
    emulator_cmd = [str(BIN / "baton-dev"), "wa-emulator", "--port", str(wa_port)]
    sender_cmd = [str(BIN / "baton-sender"), "serve"]
    try:
        async with (
            process(
                emulator_cmd, emulator_env, f"{emulator_url}/health", logs / "wa.log"
            ) as wa_proc,
            httpx.AsyncClient(base_url=emulator_url, timeout=10) as wa,
        ):
            # No ingress here: no status webhooks (they would cost the emulator, not the sender).
            (await wa.post("/_emulator/config", json={"statuses": []})).raise_for_status()
            sender_health = f"http://127.0.0.1:{sender_port}/health"
            async with process(
                sender_cmd, sender_env, sender_health, logs / "sender.log"
            ) as sender_proc:
                stop = asyncio.Event()
                feeder = asyncio.create_task(
                    feed(bus, limit * FEED_FACTOR, duration, customers, stop)
                )
                samples: list[tuple[float, int]] = []
                cpu: list[tuple[float, float, float]] = []  # (t, sender s, emulator s)
                started = time.monotonic()
                while time.monotonic() - started < duration:
                    stats = (await wa.get("/_emulator/limits")).json()
                    samples.append((time.monotonic() - started, int(stats["accepted"])))
                    cpu.append(
                        (samples[-1][0], cpu_seconds(sender_proc.pid), cpu_seconds(wa_proc.pid))
                    )
                    await asyncio.sleep(1.0)
                stop.set()
                load = os.getloadavg()[0]  # the last minute of the run, before teardown
                await feeder
                final = (await wa.get("/_emulator/limits")).json()
    finally:
        await drop_prefix(bus, prefix)
        await bus.aclose()
    steady = [(t, n) for t, n in samples if t >= warmup]
    if len(steady) < 2:
        steady = samples
    (t0, n0), (t1, n1) = steady[0], steady[-1]
    per_second = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(steady)]
    window = [c for c in cpu if t0 <= c[0] <= t1]
    sent = max(1, n1 - n0)
    cpu_us = {
        "sender": 1e6 * (window[-1][1] - window[0][1]) / sent,
        "emulator": 1e6 * (window[-1][2] - window[0][2]) / sent,
    }
    return PhaseResult(
        limit=limit,
        duration=t1 - t0,
        sustained=(n1 - n0) / (t1 - t0) if t1 > t0 else 0.0,
        per_second=per_second,
        accepted=int(final["accepted"]),
        refused={str(k): int(v) for k, v in final["refused"].items()},
        cpu_us=cpu_us,
        load=load,
    )


def report(result: PhaseResult) -> None:
    """Print one phase's figures."""
    seconds = result.per_second or [0.0]
    verdict = "within +-5%" if result.within else "NOT within +-5%"
    print(f"  limit {result.limit}/s: sustained {result.sustained:.1f} msg/s over "
          f"{result.duration:.0f} s ({verdict}); one-second rates min {min(seconds):.0f} "
          f"median {statistics.median(seconds):.0f} max {max(seconds):.0f}")  # fmt: skip
    print(f"    emulator accepted {result.accepted}; refused 130429: "
          f"{result.refused.get('130429', 0)}, 131056: {result.refused.get('131056', 0)}")  # fmt: skip
    print(f"    CPU per accepted message: sender {result.cpu_us['sender']:.0f} us, "
          f"emulator {result.cpu_us['emulator']:.0f} us; 1-min load average {result.load:.2f}")  # fmt: skip


async def main(argv: list[str]) -> None:
    """Run each `--rates` phase for `--duration` seconds and print the figures."""
    parser = argparse.ArgumentParser(prog="bench sender_throughput")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per rate")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds not measured")
    parser.add_argument("--rates", default="1000,80", help="comma-separated msg/s limits")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    warmup = min(args.warmup, args.duration / 3)

    logs = ROOT / ".data" / "bench-sender"
    logs.mkdir(parents=True, exist_ok=True)
    results = []
    with infra_and_database() as (url, redis_url):
        for rate in rates:
            results.append(
                await phase(
                    rate,
                    args.duration,
                    warmup,
                    database_url=url,
                    redis_url=redis_url,
                    logs=logs,
                )
            )
    print("sender throughput: real baton-sender and WhatsApp emulator processes, 127.0.0.1")
    print(machine_line())
    print(f"  feed {FEED_FACTOR}x the limit, {args.duration:.0f} s per rate, first {warmup:.0f} s "
          f"not measured; emulator enforces the same limit")  # fmt: skip
    for result in results:
        report(result)
