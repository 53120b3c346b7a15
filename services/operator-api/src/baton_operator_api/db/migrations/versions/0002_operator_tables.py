"""Operators and tokens, conversations, transcript and audit log.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, *, nullable: bool = True, now: bool = False) -> sa.Column[object]:
    default = sa.func.now() if now else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def upgrade() -> None:
    """Create the operator-api tables."""
    op.create_table(
        "operators",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        _ts("created_at", nullable=False, now=True),
    )
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("operator_id", UUID(as_uuid=True), sa.ForeignKey("operators.id"), nullable=False),
        sa.Column("label", sa.String(50), nullable=False, server_default=""),
        _ts("created_at", nullable=False, now=True),
        _ts("revoked_at"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("phone_number_id", sa.String(64), nullable=False),
        sa.Column("wa_id", sa.String(128), nullable=False),
        sa.Column("customer_name", sa.String(256)),
        sa.Column("mode", sa.String(20), nullable=False, server_default="ai"),
        sa.Column("epoch", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("operator", sa.String(100)),
        sa.Column("mode_reason", sa.Text),
        _ts("last_message_at"),
        _ts("last_inbound_at"),
        _ts("waiting_since"),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
    )
    op.create_index("ix_conversations_wa_id", "conversations", ["wa_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("author", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("wa_message_id", sa.String(256)),
        sa.Column("command_id", sa.String(128)),
        sa.Column("status", sa.String(20)),
        sa.Column("status_rank", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("reason", sa.Text),
        sa.Column("operator", sa.String(100)),
        sa.Column("latency_ms", sa.BigInteger),
        _ts("occurred_at", nullable=False),
        _ts("updated_at", nullable=False, now=True),
    )
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "id"])
    op.create_index(
        "uq_messages_inbound",
        "messages",
        ["wa_message_id"],
        unique=True,
        postgresql_where=sa.text("direction = 'in'"),
    )
    op.create_index(
        "uq_messages_command",
        "messages",
        ["command_id"],
        unique=True,
        postgresql_where=sa.text("direction = 'out'"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        _ts("at", nullable=False, now=True),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("conversation_id", sa.String(64)),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )


def downgrade() -> None:
    """Drop the operator-api tables."""
    for table in ("audit_log", "messages", "conversations", "tokens", "operators"):
        op.drop_table(table)
