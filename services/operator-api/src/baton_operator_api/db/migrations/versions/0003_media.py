"""Customer media: downloads and their bytes; the transcript's link to them.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _ts(name: str, *, nullable: bool = True, now: bool = False) -> sa.Column[object]:
    default = sa.func.now() if now else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def upgrade() -> None:
    """Create `media` and add `messages.media_id`."""
    op.add_column("messages", sa.Column("media_id", sa.String(256)))
    op.create_table(
        "media",
        sa.Column("media_id", sa.String(256), primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("wa_message_id", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("voice", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("mime_type", sa.String(255)),
        sa.Column("filename", sa.String(255)),
        sa.Column("webhook_sha256", sa.String(100)),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        _ts("due_at", nullable=False, now=True),
        sa.Column("claim_id", UUID(as_uuid=True)),
        sa.Column("reason", sa.Text),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("content", sa.LargeBinary),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
        _ts("downloaded_at"),
    )
    op.create_index(
        "ix_media_due",
        "media",
        ["due_at"],
        postgresql_where=sa.text("status IN ('pending', 'downloading')"),
    )


def downgrade() -> None:
    """Drop `media` and `messages.media_id`."""
    op.drop_table("media")
    op.drop_column("messages", "media_id")
