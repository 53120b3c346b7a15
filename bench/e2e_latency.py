"""End-to-end latency: webhook accepted by ingress -> reply recorded by the WhatsApp emulator.

The whole stack runs as `make run` runs it (separate processes, real PostgreSQL and Redis),
with the buffer's quiet time at 0, so the figure is Baton's own overhead plus the scripted
model's (instant) answer.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import httpx
from redis.asyncio import Redis

from baton_devtools.supervisor import start_stack
from baton_shared.testing import delete_prefix, new_prefix
from bench.measure import infra_and_database, machine_line, percentile

ROOT = Path(__file__).resolve().parents[1]


async def one_round_trip(client: httpx.AsyncClient, emulator: str, wa_id: str) -> float:
    """Seconds from the webhook's 200 to the reply appearing in the emulator's outbox."""
    reply = await client.post(f"{emulator}/_emulator/inbound", json={"from": wa_id, "text": "ping"})
    reply.raise_for_status()
    accepted = time.perf_counter()
    while True:
        got = await client.get(f"{emulator}/_emulator/messages", params={"to": wa_id})
        if any(m["type"] == "text" for m in got.json()):
            return time.perf_counter() - accepted
        if time.perf_counter() - accepted > 30:
            raise TimeoutError(f"no reply for {wa_id}")
        await asyncio.sleep(0.005)


async def main(argv: list[str]) -> None:
    """Start a private stack, measure `--count` sequential round trips, print the figures."""
    parser = argparse.ArgumentParser(prog="bench e2e_latency")
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args(argv)

    with infra_and_database() as (url, redis_url):
        prefix = new_prefix()
        env = {
            "BATON_ENV": "test",
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": prefix,
            "BUFFER_QUIET_SECONDS": "0",
            "BUFFER_MAX_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
        }
        sink = ROOT / ".data" / "bench-stack"
        async with start_stack(env, sink, log_sink=lambda *_: None) as stack:
            emulator = stack.url("wa-emulator")
            async with httpx.AsyncClient(timeout=30) as client:
                await one_round_trip(client, emulator, "5511900000000")  # warm-up
                samples = [
                    await one_round_trip(client, emulator, f"55119{n:08d}")
                    for n in range(args.count)
                ]
        redis = Redis.from_url(redis_url)
        try:
            await delete_prefix(redis, prefix)  # the Redis server is shared
        finally:
            await redis.aclose()

    ms = [s * 1000 for s in samples]
    print(f"e2e latency, webhook 200 -> reply recorded ({args.count} sequential conversations)")
    print(machine_line())
    print(
        f"  p50 {percentile(ms, 50):.1f} ms  p95 {percentile(ms, 95):.1f} ms  "
        f"p99 {percentile(ms, 99):.1f} ms  max {max(ms):.1f} ms  mean {statistics.mean(ms):.1f} ms"
    )
