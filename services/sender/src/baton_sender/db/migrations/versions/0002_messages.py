"""Outbound messages and customer-service windows.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `messages` and `windows`."""
    op.create_table(
        "messages",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("command_id", sa.String(200), nullable=False),
        sa.Column("part", sa.Integer, nullable=False, server_default="0"),
        sa.Column("parts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("phone_number_id", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(200), nullable=False),
        sa.Column("author", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("control_epoch", sa.BigInteger, nullable=True),
        sa.Column("command", JSONB, nullable=False),
        sa.Column("request_event", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("wa_message_id", sa.String(200), nullable=True, unique=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("error", JSONB, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("command_id", "part", name="messages_command_part"),
    )
    op.create_index(
        "messages_pending",
        "messages",
        ["phone_number_id", "recipient", "seq"],
        postgresql_where=sa.text("status IN ('queued', 'claimed', 'calling')"),
    )
    op.create_table(
        "windows",
        sa.Column("phone_number_id", sa.String(64), primary_key=True),
        sa.Column("customer", sa.String(64), primary_key=True),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop `windows` and `messages`."""
    op.drop_table("windows")
    op.drop_index("messages_pending", table_name="messages")
    op.drop_table("messages")
