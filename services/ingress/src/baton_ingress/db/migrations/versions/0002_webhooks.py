"""Webhook archive and de-duplication tables.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `webhooks`, `seen_messages` and `seen_statuses`."""
    op.create_table(
        "webhooks",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("body_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "archived_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("webhooks_received_at", "webhooks", ["received_at"])
    op.create_table(
        "seen_messages",
        sa.Column("message_id", sa.String(256), primary_key=True),
        sa.Column("phone_number_id", sa.String(64), nullable=False),
        sa.Column(
            "seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "seen_statuses",
        sa.Column("message_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column(
            "seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("message_id", "status"),
    )


def downgrade() -> None:
    """Drop the archive and de-duplication tables."""
    op.drop_table("seen_statuses")
    op.drop_table("seen_messages")
    op.drop_index("webhooks_received_at", table_name="webhooks")
    op.drop_table("webhooks")
