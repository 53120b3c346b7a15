"""Wiring of the ingress service: settings, runtime, webhook worker, HTTP routes, CLI."""

from __future__ import annotations

import os
import sys

from fastapi import FastAPI
from starlette.types import ASGIApp

from baton_ingress.api.deps import IngressContext
from baton_ingress.api.front import IngressFront
from baton_ingress.api.routes import webhook
from baton_ingress.appender import WebhookAppender, appender_bus
from baton_ingress.consumer import register_consumers
from baton_ingress.db.models import RETENTION, SCHEMA
from baton_ingress.replay import replay_cli
from baton_ingress.settings import IngressSettings
from baton_shared.cli import run_cli
from baton_shared.runtime import Runtime, build_app

ROLES = ("all", "web", "worker")


def create_app(settings: IngressSettings, *, run_worker: bool | None = None) -> FastAPI:
    """The ingress app of `settings.role`: the webhook endpoint unless `worker`, the worker
    unless `web`; `run_worker=False` leaves the worker out whatever the role."""
    runtime = Runtime("ingress", settings, SCHEMA)
    if run_worker is None:
        run_worker = settings.role != "web"
    if run_worker:
        register_consumers(runtime, settings)
        runtime.prune(RETENTION)
    if settings.role == "worker":
        app = build_app(runtime, title="Baton ingress")
    else:
        appender = WebhookAppender(appender_bus(settings), timeout=settings.publish_timeout_seconds)
        app = build_app(
            runtime, title="Baton ingress", routers=[webhook.router], on_stop=[appender.aclose]
        )
        app.state.ingress = IngressContext(settings=settings, bus=runtime.bus, appender=appender)
    app.state.runtime = runtime
    return app


def serve_app(settings: IngressSettings) -> ASGIApp:
    """What `serve` hands to uvicorn: the app of `create_app`, behind `IngressFront` (which
    answers `POST /webhook` itself) unless the process is only a worker."""
    app = create_app(settings)
    return app if settings.role == "worker" else IngressFront(app)


def cli(argv: list[str] | None = None) -> int:
    """`baton-ingress serve [--role all|web|worker] | migrate | replay --since ...`."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["replay"]:
        return replay_cli(args[1:])
    if args[:1] == ["serve"] and "--role" in args:
        # `--role X` is `INGRESS_ROLE=X` for this process (the stack gives every process
        # one environment, so the command line tells the two ingress processes apart).
        at = args.index("--role")
        role = args[at + 1] if at + 1 < len(args) else ""
        if role not in ROLES:
            print(f"baton-ingress: --role must be one of {', '.join(ROLES)}", file=sys.stderr)
            return 2
        os.environ["INGRESS_ROLE"] = role
        args = args[:at] + args[at + 2 :]
    return run_cli(
        "ingress",
        settings_cls=IngressSettings,
        create_app=serve_app,
        migrations="baton_ingress.db.migrations",
        schema=SCHEMA,
        port=lambda s: s.http_port,
        argv=args,
    )
