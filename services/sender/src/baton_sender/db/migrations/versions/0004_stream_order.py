"""Messages ordered by the `wa.outbound` entry that asked for them, not by when recorded.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PENDING = "status IN ('queued', 'claimed', 'calling')"


def upgrade() -> None:
    """Add `stream_ms`/`stream_seq` (0 for messages recorded before: they keep their `seq`
    order, ahead of every newer one) and rebuild both claim indexes on the new order."""
    for column in ("stream_ms", "stream_seq"):
        op.add_column(
            "messages", sa.Column(column, sa.BigInteger, nullable=False, server_default="0")
        )
    op.drop_index("messages_pending", table_name="messages")
    op.drop_index("messages_queued", table_name="messages")
    op.create_index(
        "messages_pending",
        "messages",
        ["phone_number_id", "recipient", "stream_ms", "stream_seq", "seq"],
        postgresql_where=sa.text(_PENDING),
    )
    op.create_index(
        "messages_queued",
        "messages",
        ["stream_ms", "stream_seq", "seq"],
        postgresql_where=sa.text("status = 'queued'"),
    )


def downgrade() -> None:
    """Back to `seq` order."""
    op.drop_index("messages_pending", table_name="messages")
    op.drop_index("messages_queued", table_name="messages")
    op.create_index(
        "messages_pending",
        "messages",
        ["phone_number_id", "recipient", "seq"],
        postgresql_where=sa.text(_PENDING),
    )
    op.create_index(
        "messages_queued", "messages", ["seq"], postgresql_where=sa.text("status = 'queued'")
    )
    for column in ("stream_ms", "stream_seq"):
        op.drop_column("messages", column)
