"""The Gemini API emulator app and its `baton-dev gemini-emulator` entry point."""

from __future__ import annotations

import argparse
import logging

import uvicorn
from fastapi import FastAPI

from baton_devtools.gemini import emulator_routes, routes
from baton_devtools.gemini.errors import GoogleApiError, google_error_handler
from baton_devtools.gemini.fast_path import ModelCallFastPath
from baton_devtools.gemini.settings import GeminiEmulatorSettings
from baton_devtools.gemini.state import GeminiState
from baton_shared.priority import lower_priority


def create_app(settings: GeminiEmulatorSettings | None = None) -> FastAPI:
    """Build the emulator; `app.state.emulator` holds its `GeminiState`."""
    app = FastAPI(title="Gemini API emulator")
    app.state.emulator = GeminiState(settings or GeminiEmulatorSettings())
    app.add_exception_handler(GoogleApiError, google_error_handler)
    app.add_middleware(ModelCallFastPath)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    app.include_router(emulator_routes.router)
    app.include_router(routes.router)
    return app


def main(argv: list[str]) -> int:
    """Serve the emulator with uvicorn (`--host`, `--port`; env `GEMINI_EMULATOR_PORT`)."""
    settings = GeminiEmulatorSettings()
    lower_priority(settings.baton_nice)
    parser = argparse.ArgumentParser(prog="baton-dev gemini-emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.gemini_emulator_port)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger(__name__).info(
        "Gemini emulator on http://%s:%d (point GEMINI_BASE_URL here)", args.host, args.port
    )
    # No access log: a log line per model call costs the emulator about as much as the call,
    # and the emulator shares the machine with the agent it serves.
    uvicorn.run(create_app(settings), host=args.host, port=args.port, access_log=False)
    return 0
