"""Alembic per service: each service's migrations run in its own schema, with its own
version table there, under an advisory lock so replicas starting together do not race."""

from __future__ import annotations

import importlib.resources

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from baton_shared.db.engine import sync_url
from baton_shared.db.tables import metadata as messaging_metadata


def alembic_config(migrations_package: str, schema: str, database_url: str) -> Config:
    """An Alembic config for a service's migrations package, without any ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(importlib.resources.files(migrations_package)))
    cfg.attributes["schema"] = schema
    cfg.attributes["url"] = sync_url(database_url)
    return cfg


def upgrade(
    migrations_package: str, schema: str, database_url: str, revision: str = "head"
) -> None:
    """Create the schema if needed and apply the service's migrations up to `revision`."""
    command.upgrade(alembic_config(migrations_package, schema, database_url), revision)


def run_env() -> None:
    """The body of every service's `env.py` (online mode only)."""
    schema: str = context.config.attributes["schema"]
    engine = create_engine(context.config.attributes["url"], poolclass=NullPool)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": f"migrate:{schema}"})
        try:
            # Checked first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when
            # the schema exists, and a service's role may own its schema without that right.
            exists = conn.scalar(
                text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
            )
            if not exists:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            conn.execute(text(f'SET search_path TO "{schema}", public'))
            conn.commit()
            context.configure(connection=conn, version_table_schema=schema, target_metadata=None)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
        finally:
            conn.execute(
                text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": f"migrate:{schema}"}
            )
            conn.commit()
    engine.dispose()


def create_messaging_tables(conn: Connection) -> None:
    """Create the inbox and outbox tables in the current schema (use in a first migration)."""
    messaging_metadata.create_all(conn)
