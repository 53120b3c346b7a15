"""Index of queued messages in send order, for the dispatcher's claim.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `messages_queued` (seq of queued messages only: small however many were sent)."""
    op.create_index(
        "messages_queued", "messages", ["seq"], postgresql_where=sa.text("status = 'queued'")
    )


def downgrade() -> None:
    """Drop `messages_queued`."""
    op.drop_index("messages_queued", table_name="messages")
