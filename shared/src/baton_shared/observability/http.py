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


class ObservabilityMiddleware:
    """Wraps each request in a span and observes `baton_http_request_seconds`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(SKIPPED_PREFIXES):
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"traceparent")
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with tracing.tracer().start_as_current_span(
            f"{method} {path}",
            context=tracing.context_from(incoming.decode("latin-1") if incoming else None),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = _route_of(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                metrics.HTTP_SECONDS.labels(method, route, str(status)).observe(
                    time.perf_counter() - started
                )
