"""Drop the foreign key from `messages.turn_id` to `turns`: retention deletes old turns with
their messages, and with no index on `messages.turn_id` (0003) the key's check would scan
every message for each turn deleted. The buffer sets `turn_id` only in the transaction that
creates the turn, so the reference holds without it.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Drop `messages_turn_id_fkey`."""
    op.drop_constraint("messages_turn_id_fkey", "messages", type_="foreignkey")


def downgrade() -> None:
    """Recreate it."""
    op.create_foreign_key("messages_turn_id_fkey", "messages", "turns", ["turn_id"], ["turn_id"])
