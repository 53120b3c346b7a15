"""ASGI middleware: a SERVER span and a latency observation per HTTP request.

A pure ASGI middleware (not `BaseHTTPMiddleware`), so the span stays the current context
inside the endpoint and events it creates join the request's trace. Operational paths
(`/health`, `/health/ready`, `/metrics`) are skipped: probes must stay cheap and quiet.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baton_shared.observability import metrics, tracing

SKIPPED_PREFIXES = ("/health", "/metrics")


def _route_of(scope: Scope) -> str:
    """The matched route template (bounded cardinality), or `unmatched`."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def _traceparent(scope: Scope) -> str | None:
    """The incoming `traceparent` header, if any (a scan, no dict of every header)."""
    for name, value in scope.get("headers") or ():
        if name == b"traceparent":
            return bytes(value).decode("latin-1")
    return None


class ObservabilityMiddleware:
    """Wraps each request in a span and observes `baton_http_request_seconds`.

    Cheap on purpose (it runs on every request of every service): no header dict, span
    attributes only when the span records, and one cached histogram child per (method,
    route, status) instead of a labelled lookup per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._observers: dict[tuple[str, str, int], Any] = {}

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        observer = self._observers.get(key)
        if observer is None:
            observer = metrics.HTTP_SECONDS.labels(method, route, str(status))
            self._observers[key] = observer
        observer.observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(SKIPPED_PREFIXES):
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        incoming = _traceparent(scope)
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with tracing.tracer().start_as_current_span(
            f"{method} {path}",
            context=tracing.context_from(incoming),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = _route_of(scope)
                if span.is_recording():
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                self._observe(method, route, status, time.perf_counter() - started)
