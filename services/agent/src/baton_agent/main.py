"""Wiring: settings → configuration, runtime, checkpointer, graph, consumers."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta

from fastapi import FastAPI

from baton_agent.checkpointer import checkpoint_pool, open_checkpointer
from baton_agent.config import load_config
from baton_agent.consumer import register
from baton_agent.context import AgentContext
from baton_agent.graph.graph import build_graph
from baton_agent.llm import build_models
from baton_agent.model_check import UnknownModelError, check_model
from baton_agent.retention import RETENTION, CheckpointHistory
from baton_agent.runner import Threads
from baton_agent.settings import AgentSettings
from baton_shared.cli import run_cli
from baton_shared.config_files import ConfigFileError
from baton_shared.runtime import Runtime, build_app

log = logging.getLogger(__name__)

# Collect young objects every this many allocations (Python's default: 700). A turn keeps
# thousands of objects alive across its model call, so with hundreds in flight each young
# collection re-scanned live state and promoted it towards the oldest generation. Applied,
# with the freeze of everything built at start, once the server has started (`run_cli`).
GC_YOUNG_THRESHOLD = 10_000


def create_app(settings: AgentSettings) -> FastAPI:
    """The agent app; configuration files are validated here, before anything starts."""
    config = load_config(settings)
    runtime = Runtime("agent", settings, "agent")
    ctx = AgentContext(settings=settings, config=config, db=runtime.db, bus=runtime.bus)
    pool = checkpoint_pool(settings.database_url, max_size=settings.checkpoint_pool_size)
    models = build_models(settings)

    async def start_graph() -> None:
        saver = await open_checkpointer(pool)
        ctx.threads = Threads(build_graph(models, config, settings, saver))
        if hours := settings.checkpoint_history_hours:  # workers start after this hook
            history = CheckpointHistory(pool, saver, keep=timedelta(hours=hours))
            runtime.workers.append(history.worker())
        where = settings.gemini_base_url or "Google's Gemini API"
        log.info("agent answers with %s at %s", settings.gemini_model, where)

    register(runtime, ctx)
    runtime.prune(RETENTION)
    app = build_app(runtime, title="Baton agent", on_start=[start_graph], on_stop=[pool.close])
    app.state.agent = ctx
    return app


def _create_app_or_exit(settings: AgentSettings) -> FastAPI:
    try:
        app = create_app(settings)
    except ConfigFileError as exc:  # a clear message, not a traceback
        print(f"agent: invalid configuration file\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        doubt = check_model(settings)
    except UnknownModelError as exc:
        print(f"agent: invalid settings\n  {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if doubt is not None:
        log.warning("%s; starting anyway", doubt)
    return app


def cli(argv: list[str] | None = None) -> int:
    """`baton-agent serve | migrate`."""
    return run_cli(
        "agent",
        settings_cls=AgentSettings,
        create_app=_create_app_or_exit,
        migrations="baton_agent.db.migrations",
        schema="agent",
        port=lambda s: s.port,
        argv=argv,
        gc_young_threshold=GC_YOUNG_THRESHOLD,
    )
