"""The command line every service shares: `baton-<service> serve | migrate`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

import uvicorn
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from starlette.types import ASGIApp

from baton_shared.db import migrate
from baton_shared.observability.logs import configure_logging
from baton_shared.priority import lower_priority
from baton_shared.settings import BaseServiceSettings

log = logging.getLogger(__name__)
S = TypeVar("S", bound=BaseServiceSettings)
AnySettings = TypeVar("AnySettings", bound=BaseSettings)


def load_settings(settings_cls: type[AnySettings]) -> AnySettings:
    """Read settings from the environment, or exit with a clear list of what is wrong."""
    try:
        return settings_cls()
    except ValidationError as exc:
        lines = [f"invalid settings for {settings_cls.__name__}:"]
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            lines.append(f"  {where}: {err['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None


def run_cli(
    service: str,
    *,
    settings_cls: type[S],
    create_app: Callable[[S], ASGIApp],
    migrations: str,
    schema: str,
    port: Callable[[S], int],
    argv: list[str] | None = None,
) -> int:
    """Parse `serve` / `migrate` and run it."""
    parser = argparse.ArgumentParser(prog=f"baton-{service}")
    parser.add_argument("command", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    settings = load_settings(settings_cls)
    configure_logging(service, settings.log_level)
    if settings.baton_nice:  # before the server starts any thread
        niceness = lower_priority(settings.baton_nice)
        log.info("%s runs at niceness %d (BATON_NICE)", service, niceness)
    if args.command == "migrate":
        migrate.upgrade(migrations, schema, settings.database_url)
        print(f"{service}: schema {schema} is up to date")
        return 0
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=port(settings),
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    return 0
