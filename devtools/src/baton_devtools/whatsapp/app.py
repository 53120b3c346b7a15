"""The WhatsApp Cloud API emulator app and its `baton-dev wa-emulator` entry point."""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from baton_devtools.whatsapp import customer_routes, emulator_routes, graph_routes, media_routes
from baton_devtools.whatsapp.errors import GraphError, graph_error_handler
from baton_devtools.whatsapp.fast_path import SendFastPath
from baton_devtools.whatsapp.settings import WaEmulatorSettings
from baton_devtools.whatsapp.state import WaState
from baton_shared.priority import lower_priority


def create_app(settings: WaEmulatorSettings | None = None) -> FastAPI:
    """Build the emulator; `app.state.emulator` holds its `WaState`."""
    state = WaState(settings or WaEmulatorSettings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.aclose()

    app = FastAPI(title="WhatsApp Cloud API emulator", lifespan=lifespan)
    app.state.emulator = state
    app.add_exception_handler(GraphError, graph_error_handler)
    app.add_middleware(SendFastPath)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    # Order matters: fixed paths before the catch-all `/{version}/{media_id}`.
    app.include_router(emulator_routes.router)
    app.include_router(customer_routes.router)
    app.include_router(media_routes.download_router)
    app.include_router(graph_routes.router)
    app.include_router(media_routes.router)
    return app


def main(argv: list[str]) -> int:
    """Serve the emulator with uvicorn (`--host`, `--port`; env `WA_EMULATOR_PORT`)."""
    settings = WaEmulatorSettings()
    lower_priority(settings.baton_nice)
    parser = argparse.ArgumentParser(prog="baton-dev wa-emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.wa_emulator_port)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger(__name__).info(
        "WhatsApp emulator on http://%s:%d, webhooks to %s",
        args.host,
        args.port,
        settings.ingress_webhook_url,
    )
    # loop/http "auto": uvloop and httptools when installed (they are in the workspace). No
    # access log: a log line per Graph call costs the emulator as much as the call at 1,000/s.
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        loop="auto",
        http="auto",
        access_log=False,
    )
    return 0
