"""Private, fully migrated databases for tests, benchmarks and `make run`."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from baton_devtools import infra
from baton_shared.db import migrate

# (migrations package, schema) of every service, in start order.
SERVICE_SCHEMAS = (
    ("baton_ingress.db.migrations", "ingress"),
    ("baton_buffer.db.migrations", "buffer"),
    ("baton_agent.db.migrations", "agent"),
    ("baton_sender.db.migrations", "sender"),
    ("baton_operator_api.db.migrations", "operator"),
)


def migrate_all(database_url: str) -> None:
    """Apply every service's migrations to `database_url`."""
    for package, schema in SERVICE_SCHEMAS:
        migrate.upgrade(package, schema, database_url)


@contextlib.contextmanager
def private_database(admin_url: str, *, prefix: str = "baton_test") -> Iterator[str]:
    """A new database with every service schema migrated; dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    infra.create_database(admin_url, name)
    url = infra.url_for_database(admin_url, name)
    try:
        migrate_all(url)
        yield url
    finally:
        infra.drop_database(admin_url, name)
