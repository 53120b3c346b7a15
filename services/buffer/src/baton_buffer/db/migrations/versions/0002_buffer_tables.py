"""Buffer tables: conversations, turns, messages.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the conversations, turns and messages tables."""
    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(64), primary_key=True),
        sa.Column("phone_number_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("last_sequence", sa.Integer, nullable=False, server_default="0"),
        sa.Column("in_flight_turn_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("in_flight_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index(
        "conversations_in_flight_idx",
        "conversations",
        ["conversation_id"],
        postgresql_where=sa.text("in_flight_turn_id IS NOT NULL"),
    )
    op.create_table(
        "turns",
        sa.Column("turn_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("closed_by", sa.String(32), nullable=False),
        sa.Column("message_count", sa.Integer, nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("timed_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("conversation_id", "sequence", name="turns_conversation_sequence_key"),
    )
    op.create_table(
        "messages",
        sa.Column("message_id", sa.String(256), primary_key=True),
        sa.Column(
            "arrival_seq", sa.BigInteger, sa.Identity(always=True), nullable=False, unique=True
        ),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("wa_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("correlation_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("traceparent", sa.String(64), nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column(
            "turn_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("turns.turn_id"),
            nullable=True,
        ),
    )
    # The pending burst of a conversation: its unassigned messages, in turn order.
    op.create_index(
        "messages_pending_idx",
        "messages",
        ["conversation_id", "wa_timestamp", "arrival_seq"],
        postgresql_where=sa.text("turn_id IS NULL"),
    )
    op.create_index("messages_turn_idx", "messages", ["turn_id"])


def downgrade() -> None:
    """Drop the buffer tables."""
    op.drop_table("messages")
    op.drop_table("turns")
    op.drop_table("conversations")
