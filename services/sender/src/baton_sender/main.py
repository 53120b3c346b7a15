"""Wiring of the sender service: runtime, consumers, dispatcher, HTTP app, CLI."""

from __future__ import annotations

from fastapi import FastAPI

from baton_sender.consumer import register
from baton_sender.context import SenderContext
from baton_sender.db.models import RETENTION
from baton_sender.dispatch.worker import Dispatcher
from baton_sender.settings import SenderSettings
from baton_shared.cli import run_cli
from baton_shared.runtime import Runtime, build_app

SERVICE = "sender"
SCHEMA = "sender"


def create_app(settings: SenderSettings) -> FastAPI:
    """The sender app: consumers of wa.outbound / wa.statuses / wa.inbound and the dispatcher."""
    runtime = Runtime(SERVICE, settings, SCHEMA)
    ctx = SenderContext.build(settings, runtime.db, runtime.bus)
    register(runtime, ctx)
    runtime.workers.append(Dispatcher(ctx))
    runtime.prune(RETENTION)
    # The HTTP client closes after the workers stopped: no send is cut off.
    app = build_app(runtime, title="Baton sender", on_stop=[ctx.client.aclose])
    app.state.sender = ctx
    return app


def cli(argv: list[str] | None = None) -> int:
    """`baton-sender serve | migrate`."""
    return run_cli(
        SERVICE,
        settings_cls=SenderSettings,
        create_app=create_app,
        migrations="baton_sender.db.migrations",
        schema=SCHEMA,
        port=lambda s: s.port,
        argv=argv,
    )
