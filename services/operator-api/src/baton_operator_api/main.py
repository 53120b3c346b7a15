"""Wiring: settings -> runtime, consumers, routes -> app; and the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from fastapi import FastAPI

from baton_operator_api import consumer, errors
from baton_operator_api.api.routes import (
    control,
    conversations,
    events,
    media,
    message_templates,
    operators,
    stats,
)
from baton_operator_api.api.schemas import OPERATOR_NAME
from baton_operator_api.auth import Role
from baton_operator_api.bootstrap import bootstrap_admin, create_operator
from baton_operator_api.context import ServiceContext
from baton_operator_api.db.media import expire_all
from baton_operator_api.db.models import SCHEMA, TRANSCRIPT_RETENTION
from baton_operator_api.feed import Feeds
from baton_operator_api.fencing import Fence, resync
from baton_operator_api.limits import BodyLimit
from baton_operator_api.media.worker import MediaDownloader
from baton_operator_api.settings import OperatorApiSettings
from baton_operator_api.templates import load_templates
from baton_shared.cli import load_settings, run_cli, unless_unreachable
from baton_shared.db import Database
from baton_shared.db.retention import Pruner
from baton_shared.periodic import Periodic
from baton_shared.runtime import Runtime, build_app

SERVICE = "operator-api"
MEDIA_RETENTION_SECONDS = 3600.0  # how often old media bytes are deleted


def create_app(settings: OperatorApiSettings) -> FastAPI:
    """The operator-api app: consumers, fencing re-sync, and the HTTP API."""
    runtime = Runtime(SERVICE, settings, SCHEMA)
    templates = load_templates(settings.templates_file) if settings.templates_file else None
    feeds = Feeds(settings.redis_url, settings.redis_prefix, settings.feed_max_clients)
    ctx = ServiceContext(runtime, settings, Fence(runtime.bus), feeds, templates)
    consumer.register(ctx)
    runtime.workers.append(  # heals a lost Redis write of a fencing hash
        Periodic(
            "FenceResync", settings.fence_resync_seconds, lambda: resync(runtime.db, ctx.fence)
        )
    )
    runtime.workers.append(MediaDownloader(runtime.db, settings, ctx.media_wake))
    if settings.media_retention_days:
        keep = timedelta(days=settings.media_retention_days)
        runtime.workers.append(
            Periodic(
                "MediaRetention", MEDIA_RETENTION_SECONDS, lambda: expire_all(runtime.db, keep)
            )
        )

    if settings.transcript_retention_days:
        keep = timedelta(days=settings.transcript_retention_days)
        pruner = Pruner(runtime.db, TRANSCRIPT_RETENTION, retention=keep, name="Transcript")
        runtime.workers.append(pruner.worker())

    async def start() -> None:
        if settings.bootstrap_admin_token:
            await bootstrap_admin(
                runtime.db, settings.bootstrap_admin_name, settings.bootstrap_admin_token
            )
        await resync(runtime.db, ctx.fence)  # Redis may have been flushed or restored

    app = build_app(
        runtime,
        title="Baton operator API",
        routers=[
            control.router,
            conversations.router,
            media.router,
            events.router,
            stats.router,
            operators.router,
            message_templates.router,
        ],
        on_start=[start],
        on_stop=[feeds.aclose],
    )
    app.state.ctx = ctx
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app


def _operator_name(value: str) -> str:
    """A name the API can address (`OperatorIn.name`), else a usage error."""
    if not OPERATOR_NAME.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: 1 to 100 letters, digits, or . _ @ - (as the API's operator names)"
        )
    return value


def _create_operator(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="baton-operator-api create-operator")
    parser.add_argument("--name", required=True, type=_operator_name)
    parser.add_argument("--role", choices=[r.value for r in Role], default=Role.OPERATOR.value)
    args = parser.parse_args(argv)
    settings = load_settings(OperatorApiSettings)

    async def run() -> str:
        db = Database(settings.database_url, SCHEMA, pool_size=1)
        try:
            return await create_operator(db, args.name, Role(args.role))
        finally:
            await db.dispose()

    token = unless_unreachable("baton-operator-api create-operator", lambda: asyncio.run(run()))
    print(f"operator {args.name} ({args.role}) created; token (shown once):\n{token}")
    return 0


def cli(argv: list[str] | None = None) -> int:
    """`baton-operator-api serve | migrate | create-operator --name N --role R`."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["create-operator"]:
        return _create_operator(args[1:])
    return run_cli(
        SERVICE,
        settings_cls=OperatorApiSettings,
        create_app=create_app,
        migrations="baton_operator_api.db.migrations",
        schema=SCHEMA,
        port=lambda s: s.port,
        argv=argv,
    )
