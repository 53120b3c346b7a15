"""The transcript is read in the order messages happened: index it that way.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Replace the (conversation, id) index with (conversation, occurred_at, id)."""
    op.create_index(
        "ix_messages_conversation_time", "messages", ["conversation_id", "occurred_at", "id"]
    )
    op.drop_index("ix_messages_conversation", table_name="messages")


def downgrade() -> None:
    """Back to the (conversation, id) index."""
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "id"])
    op.drop_index("ix_messages_conversation_time", table_name="messages")
