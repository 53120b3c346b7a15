"""Drop `messages_turn_idx`: no query looks messages up by turn, and keeping it cost an index
entry on every message's insert and again on its assignment to a turn.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Drop the index on `messages.turn_id`."""
    op.drop_index("messages_turn_idx", table_name="messages")


def downgrade() -> None:
    """Recreate it."""
    op.create_index("messages_turn_idx", "messages", ["turn_id"])
