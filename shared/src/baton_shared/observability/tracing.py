"""OpenTelemetry tracing: one customer message is one trace across streams.

Every event carries a W3C `traceparent`. A consumer handles each event inside a CONSUMER span
that is a child of that traceparent; events created while it runs (`Event.create(...)`, also
without `cause`) carry the handling span as their parent (see `events.envelope`), so the next
service's span is a child of this one. HTTP requests (except `/health*` and `/metrics`) run in
a SERVER span that continues an incoming `traceparent` header, so an event created by a
request (the ingress webhook) roots the trace at that request.

Export is off by default. Then no SDK is installed at all: Baton's spans come from an
ids-only tracer (`IdsOnlyTracer`) whose spans record nothing but get real, fresh span ids
under their parent's trace id, so traceparents stay exactly as they would be with export on
(every hop its own span id, one trace id end to end) for the price of two random numbers. No
global provider is installed either, so third-party instrumentation (FastAPI's native
telemetry included) stays off. The standard variables switch export on, with the SDK:

- `OTEL_TRACES_EXPORTER=otlp` (or `console`; comma-separated; `none` = off). When unset,
  setting `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` implies `otlp`.
- `OTEL_EXPORTER_OTLP_*` (endpoint, headers, timeout...) as read by the OTLP HTTP/protobuf
  exporter; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`,
  `OTEL_BSP_*` as the SDK reads them. `OTEL_SDK_DISABLED=true` creates no spans at all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    NoOpTracerProvider,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util import types

from baton_shared.randomness import random_bits

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_INSTRUMENTATION = "baton"


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class IdsOnlyTracer(Tracer):
    """A tracer whose spans record nothing but carry real ids: a fresh span id under the
    parent's trace id (a new trace id without a valid parent). What the SDK's spans would
    propagate, without the SDK's cost; used while export is off."""

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        """A non-recording span, child of the current span of `context`."""
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, flags = parent.trace_id, parent.trace_flags
        else:
            trace_id, flags = random_bits(128) or 1, _SAMPLED
        span_id = random_bits(64) or 1
        return NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags))

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _CurrentSpan:
        """A new span (see `start_span`), current inside the block."""
        return _CurrentSpan(self.start_span(name, context))


class _CurrentSpan:
    """Makes `span` the current span inside a `with` block: `trace.use_span(span,
    end_on_exit=False)` for a span with nothing to record, without its two generator-based
    context managers (a third of a request span's cost; every request and event has one)."""

    __slots__ = ("_token", "span")

    def __init__(self, span: Span) -> None:
        self.span = span

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(self, *exc_info: object) -> None:
        otel_context.detach(self._token)


class IdsOnlyTracerProvider(trace.TracerProvider):
    """The provider of `IdsOnlyTracer` (export off)."""

    def __init__(self) -> None:
        self._tracer = IdsOnlyTracer()

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes | None = None,
    ) -> Tracer:
        """The one ids-only tracer."""
        return self._tracer


class _State:
    provider: trace.TracerProvider | None = None
    tracer: Tracer = NoOpTracerProvider().get_tracer(_INSTRUMENTATION)


_state = _State()


def exporters_from_env(env: Mapping[str, str] | None = None) -> list[SpanExporter]:
    """The span exporters the standard `OTEL_*` variables ask for; none by default."""
    env = os.environ if env is None else env
    names = env.get("OTEL_TRACES_EXPORTER")
    if names is None:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = "otlp" if endpoint else "none"
    exporters: list[SpanExporter] = []
    for name in (n.strip().lower() for n in names.split(",")):
        if name in ("", "none"):
            continue
        if name == "otlp":
            protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                log.warning("OTLP protocol %s is not supported; using http/protobuf", protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        else:
            log.warning("unknown OTEL_TRACES_EXPORTER %r ignored", name)
    return exporters


def configure_tracing(service: str, env: Mapping[str, str] | None = None) -> trace.TracerProvider:
    """Install this process's tracer provider once (later calls return the first one).

    With no exporter asked for, the ids-only provider (no SDK, nothing global); with one, an
    SDK provider, also installed globally for third-party instrumentation."""
    if _state.provider is not None:
        return _state.provider
    env = os.environ if env is None else env
    provider: trace.TracerProvider
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        provider = NoOpTracerProvider()
    elif not (exporters := exporters_from_env(env)):
        provider = IdsOnlyTracerProvider()
        set_provider(provider)
        return provider
    else:
        attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": f"baton-{service}"}
        sdk = TracerProvider(resource=Resource.create(attributes))
        for exporter in exporters:
            sdk.add_span_processor(BatchSpanProcessor(exporter))
        provider = sdk
    set_provider(provider)
    trace.set_tracer_provider(provider)  # for third-party instrumentation; first call wins
    return provider


def set_provider(provider: trace.TracerProvider | None) -> trace.TracerProvider | None:
    """Use `provider` for Baton's spans (tests swap in an in-memory one); returns the old."""
    previous = _state.provider
    _state.provider = provider
    _state.tracer = (provider or NoOpTracerProvider()).get_tracer(_INSTRUMENTATION)
    return previous


def tracer() -> Tracer:
    """The tracer Baton's spans come from."""
    return _state.tracer


def flush(timeout_millis: int = 5000) -> None:
    """Export the spans still buffered (called when a runtime stops)."""
    provider = _state.provider
    if isinstance(provider, TracerProvider):
        provider.force_flush(timeout_millis)


def context_from(traceparent: str | None) -> Context:
    """An OpenTelemetry context whose remote parent is `traceparent` (empty if malformed)."""
    return _PROPAGATOR.extract({"traceparent": traceparent} if traceparent else {})


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, or None outside any span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, or None outside any span."""
    ctx = trace.get_current_span().get_span_context()
    return (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}") if ctx.is_valid else None


@contextmanager
def consume_span(
    stream: str, group: str, traceparent: str, attributes: Mapping[str, Any]
) -> Iterator[Span]:
    """A CONSUMER span, child of the event's `traceparent`, current while the handler runs."""
    with tracer().start_as_current_span(
        f"process {stream}",
        context=context_from(traceparent),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "redis",
            "messaging.operation.type": "process",
            "messaging.destination.name": stream,
            "messaging.consumer.group.name": group,
            **attributes,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def mark_failed(span: Span, exc: BaseException) -> None:
    """Record a handler failure on `span`."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
