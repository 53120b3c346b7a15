"""Conversation control state and the turn log.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `conversations` (mode and epoch per conversation) and `turns` (one row a turn)."""
    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(200), primary_key=True),
        sa.Column("phone_number_id", sa.String(100), nullable=False),
        sa.Column("wa_id", sa.String(100), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "turns",
        sa.Column("turn_id", sa.Uuid, primary_key=True),
        sa.Column("conversation_id", sa.String(200), nullable=False, index=True),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("outputs", sa.Integer, nullable=False),
        sa.Column("handoff_reason", sa.Text, nullable=True),
        sa.Column(
            "completed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    """Drop the tables."""
    op.drop_table("turns")
    op.drop_table("conversations")
