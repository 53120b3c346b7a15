"""Alembic migrations of the operator schema."""
