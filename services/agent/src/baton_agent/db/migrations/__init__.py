"""Alembic migrations of the agent schema."""
