"""LangGraph checkpoint tables, created by the checkpointer's own migration statements.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from langgraph.checkpoint.postgres.base import BasePostgresSaver

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply the saver's migrations not applied yet, recording them as `setup()` does."""
    migrations = BasePostgresSaver.MIGRATIONS
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        bind.exec_driver_sql(migrations[0])
        done = bind.exec_driver_sql("SELECT max(v) FROM checkpoint_migrations").scalar()
        start = -1 if done is None else int(done)
        for version in range(start + 1, len(migrations)):
            bind.exec_driver_sql(migrations[version])
            bind.execute(
                sa.text("INSERT INTO checkpoint_migrations (v) VALUES (:v)"), {"v": version}
            )


def downgrade() -> None:
    """Drop the checkpoint tables."""
    for table in ("checkpoint_writes", "checkpoint_blobs", "checkpoints", "checkpoint_migrations"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
