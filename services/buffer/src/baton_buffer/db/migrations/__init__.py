"""Alembic migrations of the buffer schema."""
