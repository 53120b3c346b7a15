"""The command line every service shares: `baton-<service> serve | migrate`."""

from __future__ import annotations

import argparse
import logging
import re
import socket
import sys
from collections.abc import Callable
from typing import TypeVar

import uvicorn
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp

from baton_shared import collector
from baton_shared.db import migrate
from baton_shared.observability.config import ObservabilitySettings
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
    except SettingsError as exc:  # a value pydantic-settings could not decode (bad JSON)
        print(
            f"invalid settings for {settings_cls.__name__}:\n"
            f"  {_variable(settings_cls, str(exc))}: not valid JSON ({exc})",
            file=sys.stderr,
        )
        raise SystemExit(2) from None


def _variable(settings_cls: type[BaseSettings], message: str) -> str:
    """The environment variable of the field a pydantic-settings error names."""
    found = re.search(r'field "(\w+)"', message)
    field = settings_cls.model_fields.get(found[1]) if found else None
    if found is None or field is None:
        return "settings"
    alias = field.validation_alias
    return alias if isinstance(alias, str) else found[1].upper()


T = TypeVar("T")


def unless_unreachable(command: str, work: Callable[[], T]) -> T:
    """Run a command's `work`; PostgreSQL or Redis down, refusing or misaddressed ends it with
    one line naming the cause, exit code 1, and no traceback (nor the URL, which may hold a
    password)."""
    try:
        return work()
    except (OSError, DBAPIError, RedisError) as exc:
        cause = (str(exc).strip().splitlines() or [""])[0][:300]
        print(
            f"{command}: cannot reach PostgreSQL or Redis: {type(exc).__name__}: {cause}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


def run_cli(
    service: str,
    *,
    settings_cls: type[S],
    create_app: Callable[[S], ASGIApp],
    migrations: str,
    schema: str,
    port: Callable[[S], int],
    argv: list[str] | None = None,
    gc_young_threshold: int | None = None,
) -> int:
    """Parse `serve` / `migrate` and run it; `gc_young_threshold`: see `collector.settle`."""
    parser = argparse.ArgumentParser(prog=f"baton-{service}")
    parser.add_argument("command", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    settings = load_settings(settings_cls)
    load_settings(ObservabilitySettings)  # read again by the runtime; checked here, at start
    configure_logging(service, settings.log_level)
    if settings.baton_nice:  # before the server starts any thread
        niceness = lower_priority(settings.baton_nice)
        log.info("%s runs at niceness %d (BATON_NICE)", service, niceness)
    if args.command == "migrate":
        unless_unreachable(
            f"baton-{service} migrate",
            lambda: migrate.upgrade(migrations, schema, settings.database_url),
        )
        print(f"{service}: schema {schema} is up to date")
        return 0
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=port(settings),
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = SettlingServer(config, gc_young_threshold)
    server.run()
    return 0 if server.started else 3  # 3: uvicorn's own code for a failed start


class SettlingServer(uvicorn.Server):
    """uvicorn's server, which settles the cycle collector once the app has started (its
    lifespan's start-up built everything long-lived) and before the first request."""

    def __init__(self, config: uvicorn.Config, gc_young_threshold: int | None) -> None:
        super().__init__(config)
        self.gc_young_threshold = gc_young_threshold

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then settle the collector."""
        await super().startup(sockets=sockets)
        if self.started:
            collector.settle(self.gc_young_threshold)
