"""Wiring of the ingress service: settings, runtime, webhook worker, HTTP routes, CLI."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from baton_ingress.api.deps import IngressContext
from baton_ingress.api.routes import webhook
from baton_ingress.appender import WebhookAppender
from baton_ingress.consumer import register_consumers
from baton_ingress.db.models import SCHEMA
from baton_ingress.replay import replay_cli
from baton_ingress.settings import IngressSettings
from baton_shared.cli import run_cli
from baton_shared.runtime import Runtime, build_app


def create_app(settings: IngressSettings, *, run_worker: bool = True) -> FastAPI:
    """The ingress app; `run_worker=False` serves the webhook endpoint without the worker."""
    runtime = Runtime("ingress", settings, SCHEMA)
    if run_worker:
        register_consumers(runtime, settings)
    app = build_app(runtime, title="Baton ingress", routers=[webhook.router])
    app.state.ingress = IngressContext(
        settings=settings, bus=runtime.bus, appender=WebhookAppender(runtime.bus)
    )
    app.state.runtime = runtime
    return app


def cli(argv: list[str] | None = None) -> int:
    """`baton-ingress serve | migrate | replay --since ...`."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["replay"]:
        return replay_cli(args[1:])
    return run_cli(
        "ingress",
        settings_cls=IngressSettings,
        create_app=create_app,
        migrations="baton_ingress.db.migrations",
        schema=SCHEMA,
        port=lambda s: s.port,
        argv=args,
    )
