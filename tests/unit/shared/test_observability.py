"""Logs, trace context and metrics documentation, without PostgreSQL or Redis."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from baton_shared import events as ev
from baton_shared.events.envelope import trace_id_of
from baton_shared.observability import logs, metrics, tracing
from baton_shared.observability.http import ObservabilityMiddleware


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Baton's spans go to memory for the test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.set_provider(provider)
    yield exporter
    tracing.set_provider(previous)


def event(**fields: object) -> ev.PlatformErrorReceived:
    payload = ev.PlatformErrors(phone_number_id="1001", errors=[ev.PlatformError(code=1)])
    return ev.PlatformErrorReceived.create(payload, producer="test", **fields)  # type: ignore[arg-type]


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("baton.events", logging.INFO, __file__, 1, "handled", None, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


# --- tracing configuration -------------------------------------------------------------


def test_no_exporter_unless_the_otel_variables_ask_for_one() -> None:
    assert tracing.exporters_from_env({}) == []
    assert tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert (
        tracing.exporters_from_env(
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}
        )
        == []
    )


def test_an_otlp_endpoint_switches_otlp_export_on() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    (exporter,) = tracing.exporters_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"})
    assert isinstance(exporter, OTLPSpanExporter)
    (exporter,) = tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "otlp"})
    assert isinstance(exporter, OTLPSpanExporter)
    (exporter,) = tracing.exporters_from_env({"OTEL_TRACES_EXPORTER": "console"})
    assert isinstance(exporter, ConsoleSpanExporter)


# --- traceparent of new events -----------------------------------------------------------


def test_outside_any_span_a_caused_event_keeps_the_trace_with_a_fresh_span() -> None:
    cause = event()
    child = event(cause=cause)
    assert trace_id_of(child.traceparent) == trace_id_of(cause.traceparent)
    assert child.traceparent != cause.traceparent


def test_inside_the_handling_span_a_caused_event_is_its_child(
    spans: InMemorySpanExporter,
) -> None:
    cause = event()
    with tracing.consume_span("wa.inbound", "g", cause.traceparent, {}) as span:
        child = event(cause=cause)
        uncaused = event()  # e.g. a handler that does not pass `cause`: joins the trace
    ctx = span.get_span_context()
    assert child.traceparent == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-01"
    assert uncaused.traceparent == child.traceparent
    (finished,) = spans.get_finished_spans()
    assert finished.kind is SpanKind.CONSUMER
    assert finished.parent is not None
    assert f"{finished.parent.span_id:016x}" == cause.traceparent.split("-")[2]
    assert f"{finished.context.trace_id:032x}" == trace_id_of(cause.traceparent)


def test_a_span_of_another_trace_does_not_capture_a_caused_event(
    spans: InMemorySpanExporter,
) -> None:
    other, cause = event(), event()
    with tracing.consume_span("wa.statuses", "g", other.traceparent, {}):
        child = event(cause=cause)
    assert trace_id_of(child.traceparent) == trace_id_of(cause.traceparent)


# --- JSON log lines ------------------------------------------------------------------------


def test_log_line_carries_event_context_and_no_body_by_default() -> None:
    line = json.loads(
        logs.JsonFormatter("buffer").format(
            record(
                event_id="e1",
                event_type="inbound.message_received",
                conversation_id="c1",
                trace_id="t" * 32,
                stream="wa.inbound",
                outcome="ok",
                duration_ms=1.5,
                body='{"text": "my card number is 4111"}',
            )
        )
    )
    assert line["service"] == "buffer"
    assert line["event_id"] == "e1"
    assert line["event_type"] == "inbound.message_received"
    assert line["outcome"] == "ok"
    assert line["duration_ms"] == 1.5
    assert "body" not in line


def test_bodies_are_logged_only_when_switched_on() -> None:
    try:
        logs.set_log_bodies(True)
        line = json.loads(logs.JsonFormatter("agent").format(record(body="hello")))
        assert line["body"] == "hello"
    finally:
        logs.set_log_bodies(False)


def test_secret_values_are_redacted_wherever_they_appear() -> None:
    logs.redact(["s3cr3t-token-value", "short"])
    rec = record(error="401 with token s3cr3t-token-value")
    rec.msg = "calling with s3cr3t-token-value, short"
    line = logs.JsonFormatter("sender").format(rec)
    assert "s3cr3t-token-value" not in line
    assert logs.REDACTED in line
    assert "short" in line  # too short to redact without mangling ordinary words


def test_trace_id_comes_from_the_current_span(spans: InMemorySpanExporter) -> None:
    with tracing.tracer().start_as_current_span("work") as span:
        line = json.loads(logs.JsonFormatter("ingress").format(record()))
    assert line["trace_id"] == f"{span.get_span_context().trace_id:032x}"


# --- HTTP spans --------------------------------------------------------------------------


async def test_http_requests_run_in_a_server_span_that_continues_traceparent(
    spans: InMemorySpanExporter,
) -> None:
    app = FastAPI()
    app.add_middleware(ObservabilityMiddleware)
    created: list[ev.Event] = []

    @app.post("/items/{item}")
    async def post(item: str) -> dict[str, str]:
        created.append(event())
        return {"item": item}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/items/7", headers={"traceparent": incoming})).is_success
        assert (await client.get("/health")).is_success
    (span,) = spans.get_finished_spans()  # /health is not traced
    assert span.name == "POST /items/{item}"
    assert span.kind is SpanKind.SERVER
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert created[0].traceparent.split("-")[2] == f"{span.context.span_id:016x}"
    sample = REGISTRY.get_sample_value(
        "baton_http_request_seconds_count",
        {"method": "POST", "route": "/items/{item}", "status": "200"},
    )
    assert sample is not None
    assert sample >= 1


# --- metrics documentation ---------------------------------------------------------------


def test_every_backbone_metric_is_documented_in_the_module_docstring() -> None:
    doc = metrics.__doc__ or ""
    names = {m._name for m in vars(metrics).values() if hasattr(m, "_name") and hasattr(m, "_type")}
    assert names
    for name in names:
        forms = (f"`{name}`", f"`{name}_total`")
        assert any(form in doc for form in forms), f"{name} is not documented"
