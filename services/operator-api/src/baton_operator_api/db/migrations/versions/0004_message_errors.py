"""Why an outbound message failed: WhatsApp's error code and an operator-readable sentence.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `messages.error_code` and `messages.error`."""
    op.add_column("messages", sa.Column("error_code", sa.Integer))
    op.add_column("messages", sa.Column("error", sa.Text))


def downgrade() -> None:
    """Drop them."""
    op.drop_column("messages", "error")
    op.drop_column("messages", "error_code")
