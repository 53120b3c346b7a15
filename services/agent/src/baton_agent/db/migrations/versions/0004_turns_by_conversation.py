"""A conversation's recent turns, for its AI answers per hour.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index `turns` by (conversation_id, completed_at)."""
    op.create_index("ix_turns_conversation_completed", "turns", ["conversation_id", "completed_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_turns_conversation_completed", table_name="turns")
