"""Initial ingress schema: inbox and outbox.

Revision ID: 0001
Revises:
"""

from alembic import op

from baton_shared.db.migrate import create_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the inbox and outbox tables."""
    create_messaging_tables(op.get_bind())


def downgrade() -> None:
    """Drop the inbox and outbox tables."""
    op.drop_table("outbox")
    op.drop_table("inbox")
