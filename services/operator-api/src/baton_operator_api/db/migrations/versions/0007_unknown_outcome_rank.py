"""A failure with reason `outcome_unknown` ranks below `sent` (1), so WhatsApp's statuses
still replace it; the other statuses move up by one to make room.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Re-rank outbound messages."""
    op.execute(
        "UPDATE messages SET status_rank = CASE"
        " WHEN status = 'failed' AND reason = 'outcome_unknown' THEN 1"
        " WHEN status IN ('failed', 'suppressed') THEN 6"
        " WHEN status IN ('sent', 'delivered', 'read', 'played') THEN status_rank + 1"
        " ELSE status_rank END"
        " WHERE direction = 'out'"
    )


def downgrade() -> None:
    """Rank them as before 0007."""
    op.execute(
        "UPDATE messages SET status_rank = CASE"
        " WHEN status IN ('failed', 'suppressed') THEN 5"
        " WHEN status IN ('sent', 'delivered', 'read', 'played') THEN status_rank - 1"
        " ELSE status_rank END"
        " WHERE direction = 'out'"
    )
