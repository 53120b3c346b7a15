"""Traces, per-event log lines, stream gauges and readiness against real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from baton_shared import events as ev
from baton_shared.db import Database
from baton_shared.events.envelope import trace_id_of
from baton_shared.observability import logs, tracing
from baton_shared.observability.config import ObservabilitySettings
from baton_shared.observability.sampler import StreamSampler
from baton_shared.runtime import Runtime, build_app
from baton_shared.settings import BaseServiceSettings
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.streams.consumer import Consumer, Delivery, Handler
from baton_shared.testing import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.set_provider(provider)
    yield exporter
    tracing.set_provider(previous)


def errors_event(code: int = 1, **fields: object) -> ev.PlatformErrorReceived:
    payload = ev.PlatformErrors(phone_number_id="1001", errors=[ev.PlatformError(code=code)])
    return ev.PlatformErrorReceived.create(payload, producer="test", **fields)  # type: ignore[arg-type]


def consumer(bus: Bus, stream: str, handler: Handler, group: str = "g") -> Consumer:
    return Consumer(
        bus,
        stream=stream,
        group=group,
        name="c1",
        handler=handler,
        block_ms=50,
        reclaim_idle_ms=60_000,
        max_deliveries=2,
    )


async def holds(condition: Callable[[], bool]) -> bool:
    """`condition()`, as a probe for `wait_until`."""
    return condition()


def event_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logs.EVENTS_LOGGER]


@contextlib.asynccontextmanager
async def running(*consumers: Consumer) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_publish_consume_hop_makes_parent_and_child_spans_of_one_trace(
    bus: Bus, spans: InMemorySpanExporter
) -> None:
    """A → handler publishes B (cause A) → handler of B: B's span is a child of A's span."""
    seen: list[ev.Event] = []

    async def first(event: ev.Event, _: Delivery) -> None:
        # Like a handler's outbox row: created during handling, published on another stream.
        await bus.publish(errors_event(2, cause=event), stream=names.CONV_CONTROL)

    async def second(event: ev.Event, _: Delivery) -> None:
        seen.append(event)

    origin = errors_event(1)
    await bus.publish(origin, stream=names.WA_STATUSES)
    async with running(
        consumer(bus, names.WA_STATUSES, first), consumer(bus, names.CONV_CONTROL, second)
    ):
        await wait_until(lambda: holds(lambda: len(spans.get_finished_spans()) == 2))

    by_stream = {s.attributes["messaging.destination.name"]: s for s in spans.get_finished_spans()}  # type: ignore[index]
    span_a, span_b = by_stream[names.WA_STATUSES], by_stream[names.CONV_CONTROL]
    trace_id = trace_id_of(origin.traceparent)
    assert f"{span_a.context.trace_id:032x}" == trace_id
    assert f"{span_b.context.trace_id:032x}" == trace_id
    assert span_a.parent is not None
    assert span_b.parent is not None
    assert f"{span_a.parent.span_id:016x}" == origin.traceparent.split("-")[2]
    assert span_b.parent.span_id == span_a.context.span_id
    assert span_a.attributes is not None
    assert span_a.attributes["messaging.message.id"] == str(origin.event_id)
    assert seen[0].traceparent.split("-")[2] == f"{span_a.context.span_id:016x}"


async def test_one_log_line_per_event_handled_with_outcome_and_no_body(
    bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(event: ev.Event, _: Delivery) -> None:
        if isinstance(event, ev.PlatformErrorReceived) and event.payload.errors[0].code == 13:
            raise RuntimeError("boom")

    ok, bad = errors_event(1, conversation_id="conv-1"), errors_event(13)
    await bus.publish(ok, stream=names.WA_STATUSES)
    await bus.publish(bad, stream=names.WA_STATUSES)
    caplog.set_level(logging.INFO, logger=logs.EVENTS_LOGGER)
    async with running(consumer(bus, names.WA_STATUSES, handler)):
        await wait_until(lambda: holds(lambda: len(event_lines(caplog)) >= 2))
    records = {r.event_id: r for r in event_lines(caplog)}  # type: ignore[attr-defined]
    assert len(records) == 2  # one line per event
    good = records[str(ok.event_id)]
    assert good.levelno == logging.INFO
    assert (good.outcome, good.stream, good.conversation_id) == ("ok", "wa.statuses", "conv-1")  # type: ignore[attr-defined]
    assert good.trace_id == trace_id_of(ok.traceparent)  # type: ignore[attr-defined]
    assert good.duration_ms >= 0  # type: ignore[attr-defined]
    failed = records[str(bad.event_id)]
    assert (failed.levelno, failed.outcome) == (logging.WARNING, "failed")  # type: ignore[attr-defined]
    assert "RuntimeError: boom" in failed.error  # type: ignore[attr-defined]
    line = json.loads(logs.JsonFormatter("test").format(good))
    assert line["event_type"] == "platform.error_received" or line["event_type"] == ok.event_type
    assert "body" not in line


async def test_sampler_reports_lag_pending_and_dlq(bus: Bus, prefix: str) -> None:
    for n in range(5):
        await bus.publish(errors_event(n), stream=names.WA_STATUSES)
    c = consumer(bus, names.WA_STATUSES, _never_called)
    await c.ensure_group()
    # Two entries delivered but not acknowledged; one dead-lettered by hand.
    await bus.redis.xreadgroup("g", "c1", {bus.key(names.WA_STATUSES): ">"}, count=2)
    await bus.redis.xadd(bus.key(names.dlq(names.WA_STATUSES)), {"x": "1"})

    sampler = StreamSampler(bus, lambda: [(names.WA_STATUSES, "g")])
    (stats,) = await sampler.sample()
    assert (stats.lag, stats.pending, stats.length, stats.dlq_length) == (3, 2, 5, 1)
    assert stats.oldest_pending_seconds >= 0
    labels = {"stream": names.WA_STATUSES, "group": "g"}
    assert REGISTRY.get_sample_value("baton_stream_lag", labels) == 3
    assert REGISTRY.get_sample_value("baton_stream_pending", labels) == 2
    assert REGISTRY.get_sample_value("baton_stream_dlq_length", {"stream": "wa.statuses"}) == 1


async def test_sampler_tolerates_streams_and_groups_that_do_not_exist_yet(bus: Bus) -> None:
    (stats,) = await StreamSampler(bus, lambda: [(names.CONV_TURNS, "nobody")]).sample()
    assert (stats.lag, stats.pending, stats.length, stats.dlq_length) == (None, 0, 0, 0)


async def _never_called(event: ev.Event, delivery: Delivery) -> None:
    raise AssertionError("not expected to run")


async def test_readiness_reports_a_lagging_group_with_the_reason(
    database_url: str, redis_url: str, prefix: str, bus: Bus, db: Database
) -> None:
    settings = BaseServiceSettings(
        baton_env="test",
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        consumer_batch=1,  # one entry in hand, the rest undelivered: lag
        consumer_block_ms=50,
    )
    runtime = Runtime(
        "obs-test",
        settings,
        db.schema,
        observability=ObservabilitySettings(ready_max_lag=2, metrics_sample_seconds=60),
    )
    blocked = asyncio.Event()

    async def slow(event: ev.Event, _: Delivery) -> None:
        await blocked.wait()

    runtime.consume(names.WA_STATUSES, "ready-g", slow)
    app = build_app(runtime, title="obs-test")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        ready = await wait_until(lambda: _status(client, 200), what="ready before any backlog")
        assert ready == {"status": "ready"}
        for n in range(6):  # the first is taken and blocks; the rest lag
            await bus.publish(errors_event(n), stream=names.WA_STATUSES)
        body = await wait_until(lambda: _status(client, 503), what="not ready while lagging")
        assert body["status"] == "not ready"
        assert any(
            r.startswith("lag ") and "wa.statuses" in r and "ready-g" in r for r in body["reasons"]
        ), body
        assert (await client.get("/health")).json()["status"] == "ok"  # liveness unaffected
        blocked.set()
        await wait_until(lambda: _status(client, 200), what="ready once caught up")


async def _status(client: httpx.AsyncClient, code: int) -> dict[str, object] | None:
    response = await client.get("/health/ready")
    return response.json() if response.status_code == code else None  # type: ignore[no-any-return]
