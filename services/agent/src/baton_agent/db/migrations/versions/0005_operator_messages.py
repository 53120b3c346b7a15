"""Operator messages wait in a table for the next turn to carry them into the thread.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `operator_messages` with its index of waiting messages."""
    op.create_table(
        "operator_messages",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("conversation_id", sa.String(200), nullable=False),
        sa.Column("message_key", sa.String(200), nullable=False, unique=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column(
            "sent_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("turn_id", sa.Uuid, nullable=True),
    )
    op.create_index(
        "ix_operator_messages_waiting",
        "operator_messages",
        ["conversation_id"],
        postgresql_where=sa.text("turn_id IS NULL"),
    )


def downgrade() -> None:
    """Drop `operator_messages`."""
    op.drop_table("operator_messages")
