"""What the webhook routes need, declared once (`IngressDep`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from baton_ingress.settings import IngressSettings
from baton_shared.streams.bus import Bus


@dataclass(frozen=True, slots=True)
class IngressContext:
    """The settings and bus the request path uses.

    Attributes:
        settings: the service settings.
        bus: where accepted webhooks are appended.
    """

    settings: IngressSettings
    bus: Bus


def get_context(request: Request) -> IngressContext:
    """The context `create_app` stored on the application."""
    context: IngressContext = request.app.state.ingress
    return context


IngressDep = Annotated[IngressContext, Depends(get_context)]
