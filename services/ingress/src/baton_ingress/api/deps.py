"""What the webhook routes need, declared once (`IngressDep`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from baton_ingress.appender import WebhookAppender
from baton_ingress.settings import IngressSettings
from baton_shared.streams.bus import Bus


@dataclass(frozen=True, slots=True)
class IngressContext:
    """The settings and bus the request path uses.

    Attributes:
        settings: the service settings.
        bus: the service's bus.
        appender: appends accepted webhooks to `wa.webhooks` (batching concurrent requests).
    """

    settings: IngressSettings
    bus: Bus
    appender: WebhookAppender


async def get_context(request: Request) -> IngressContext:
    """The context `create_app` stored on the application (async: no threadpool hop)."""
    context: IngressContext = request.app.state.ingress
    return context


IngressDep = Annotated[IngressContext, Depends(get_context)]
