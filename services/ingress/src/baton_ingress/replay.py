"""`baton-ingress replay --since ...`: re-emit archived bodies onto `wa.webhooks`.

Safe to run at any time: the worker de-duplicates by WhatsApp message id and (id, status), so
only what was never emitted (e.g. parts rejected before a fix or an allow-list change) comes
out again.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from datetime import UTC, datetime, timedelta

from baton_ingress.db import repo
from baton_ingress.db.models import SCHEMA
from baton_ingress.settings import IngressSettings
from baton_shared.cli import load_settings, unless_unreachable
from baton_shared.db import Database
from baton_shared.events import WebhookBody, WebhookReceived
from baton_shared.streams.bus import Bus

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(value: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when no zone is given) or a duration ago such as `90m`, `7d`."""
    match = _DURATION.match(value.strip())
    if match:
        try:
            ago = timedelta(**{_UNITS[match[2]]: int(match[1])})
            return (now or datetime.now(UTC)) - ago
        except OverflowError:
            raise argparse.ArgumentTypeError(f"{value!r} reaches back before year 1") from None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither an ISO 8601 time nor a duration like 30m, 2h, 7d"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


async def replay(
    db: Database, bus: Bus, since: datetime, until: datetime | None = None, batch: int = 500
) -> int:
    """Publish every body archived in [since, until) as a new `WebhookReceived`; returns how
    many."""
    after_id, count = 0, 0
    while True:
        async with db.session() as session:
            rows = await repo.archived_since(session, since, until, after_id, batch)
        if not rows:
            return count
        for row in rows:
            payload = WebhookBody(
                body=row.body, signature=row.signature, received_at=row.received_at
            )
            await bus.publish(WebhookReceived.create(payload, producer="ingress"))
            after_id, count = row.id, count + 1


def replay_cli(argv: list[str]) -> int:
    """Parse `replay` options, run it, print how many bodies were re-emitted."""
    parser = argparse.ArgumentParser(prog="baton-ingress replay")
    parser.add_argument("--since", required=True, type=parse_when, help="ISO time or 30m/2h/7d")
    parser.add_argument("--until", type=parse_when, default=None, help="ISO time or duration")
    args = parser.parse_args(argv)
    settings = load_settings(IngressSettings)
    count = unless_unreachable(
        "baton-ingress replay", lambda: asyncio.run(_run(settings, args.since, args.until))
    )
    print(f"ingress: re-emitted {count} archived webhook bodies since {args.since.isoformat()}")
    return 0


async def _run(settings: IngressSettings, since: datetime, until: datetime | None) -> int:
    db = Database(settings.database_url, SCHEMA, pool_size=1)
    bus = Bus.from_url(settings.redis_url, prefix=settings.redis_prefix)
    try:
        return await replay(db, bus, since, until)
    finally:
        await db.dispose()
        await bus.aclose()
