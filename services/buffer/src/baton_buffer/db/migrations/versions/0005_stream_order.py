"""Messages keep the position of their `wa.inbound` entry, which orders a turn's messages of
one WhatsApp second across replicas.

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
    """Add `stream_ms` and `stream_seq` (0 for the messages recorded before)."""
    for column in ("stream_ms", "stream_seq"):
        op.add_column(
            "messages", sa.Column(column, sa.BigInteger, nullable=False, server_default="0")
        )


def downgrade() -> None:
    """Drop them."""
    for column in ("stream_ms", "stream_seq"):
        op.drop_column("messages", column)
