"""What uvicorn serves in a process that answers webhooks: `POST /webhook` goes straight to
its endpoint, every other request to the FastAPI app.

FastAPI wraps each request in several layers before any route runs (its telemetry check,
Starlette's error middleware, exception telemetry, a body-size wrapper, the user middleware,
exception handlers, an exit stack, the router). For the one path WhatsApp calls thousands of
times a second none of them does anything the endpoint needs, and together they cost more
CPU than checking and appending the webhook. The endpoint keeps what matters from them: its
own request span and latency metric (`ObservabilityMiddleware`, route `/webhook`) and its own
guarantee never to answer 500 (`WebhookEndpoint`).
"""

from __future__ import annotations

from types import SimpleNamespace

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from baton_ingress.api.deps import IngressContext
from baton_ingress.api.routes.webhook import WebhookEndpoint
from baton_shared.observability.http import ObservabilityMiddleware

# What a matched router would put in `scope["route"]`: the metric's and the span's label.
_ROUTE = SimpleNamespace(path="/webhook")


class IngressFront:
    """An ASGI app: `POST /webhook` to `WebhookEndpoint`, anything else (lifespan included)
    to `app`, whose `state.ingress` is the endpoint's context."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        context: IngressContext = app.state.ingress
        self.webhook = ObservabilityMiddleware(WebhookEndpoint(context))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/webhook" and scope["method"] == "POST":
            scope["route"] = _ROUTE
            await self.webhook(scope, receive, send)
            return
        await self.app(scope, receive, send)
