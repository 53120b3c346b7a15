"""Alembic migrations of the sender schema."""
