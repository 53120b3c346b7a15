"""`played` (a voice message first played) ranks after `read`; `failed` and `suppressed`
move from rank 4 to 5, above it, as the code now ranks them.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Re-rank the final statuses."""
    op.execute("UPDATE messages SET status_rank = 5 WHERE status IN ('failed', 'suppressed')")


def downgrade() -> None:
    """Rank them as before (a `played` message keeps 4, which `failed` had)."""
    op.execute("UPDATE messages SET status_rank = 4 WHERE status IN ('failed', 'suppressed')")
