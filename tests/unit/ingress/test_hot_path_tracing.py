"""With export off, the request path's spans come from the ids-only tracer: no SDK cost, yet
the traceparents of the events it creates are those the SDK would give (one trace id, a span
id per hop)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from baton_shared import events as ev
from baton_shared.events.envelope import trace_id_of
from baton_shared.observability import tracing


@pytest.fixture
def ids_only() -> Iterator[None]:
    previous = tracing.set_provider(tracing.IdsOnlyTracerProvider())
    yield
    tracing.set_provider(previous)


def an_event(cause: ev.Event | None = None) -> ev.PlatformErrorReceived:
    payload = ev.PlatformErrors(phone_number_id="1001", errors=[ev.PlatformError(code=1)])
    return ev.PlatformErrorReceived.create(payload, producer="test", cause=cause)


def test_no_exporter_means_the_ids_only_tracer() -> None:
    assert tracing.exporters_from_env({}) == []
    assert isinstance(tracing.IdsOnlyTracerProvider().get_tracer("x"), tracing.IdsOnlyTracer)


@pytest.mark.usefixtures("ids_only")
def test_each_hop_gets_a_span_of_its_own_in_one_trace() -> None:
    origin = an_event()
    with tracing.consume_span("wa.webhooks", "ingress", origin.traceparent, {}) as span:
        assert not span.is_recording()
        first, second = an_event(origin), an_event(origin)
    with tracing.consume_span("wa.inbound", "buffer", first.traceparent, {}):
        third = an_event(first)
    assert {trace_id_of(e.traceparent) for e in (origin, first, third)} == {
        trace_id_of(origin.traceparent)
    }
    assert len({origin.traceparent, first.traceparent, third.traceparent}) == 3
    assert first.traceparent == second.traceparent  # same handling span: same parent
    assert first.traceparent.split("-")[2] == f"{span.get_span_context().span_id:016x}"


@pytest.mark.usefixtures("ids_only")
def test_a_span_without_parent_starts_a_new_sampled_trace() -> None:
    with tracing.tracer().start_as_current_span("request", context=tracing.context_from(None)):
        traceparent = tracing.current_traceparent()
    assert traceparent is not None
    assert traceparent.endswith("-01")
    assert tracing.current_traceparent() is None  # detached after the block
