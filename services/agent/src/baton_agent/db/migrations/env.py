"""Alembic environment: runs in the agent schema (see baton_shared.db.migrate)."""

from baton_shared.db.migrate import run_env

run_env()
