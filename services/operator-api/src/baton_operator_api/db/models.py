"""Tables of the `operator` schema: operators and tokens, conversation control state, the
transcript read model, customer media and the audit log."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from baton_shared.db.retention import oldest_first

SCHEMA = "operator"
metadata = MetaData(schema=SCHEMA)

operators = Table(
    "operators",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("operator_id", UUID(as_uuid=True), ForeignKey(operators.c.id), nullable=False),
    Column("label", String(50), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("wa_id", String(128), nullable=False),
    Column("customer_name", String(256), nullable=True),
    Column("mode", String(20), nullable=False, server_default="ai"),
    Column("epoch", BigInteger, nullable=False, server_default=text("0")),
    Column("operator", String(100), nullable=True),
    Column("mode_reason", Text, nullable=True),
    Column("last_message_at", DateTime(timezone=True), nullable=True),
    Column("last_inbound_at", DateTime(timezone=True), nullable=True),
    Column("waiting_since", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_conversations_wa_id", "wa_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("conversation_id", String(64), nullable=False),
    Column("direction", String(3), nullable=False),  # in | out
    Column("author", String(20), nullable=False),  # customer | ai | operator | system | unknown
    Column("kind", String(20), nullable=False),
    Column("text", Text, nullable=True),
    Column("wa_message_id", String(256), nullable=True),
    Column("command_id", String(128), nullable=True),
    Column("status", String(20), nullable=True),
    Column("status_rank", BigInteger, nullable=False, server_default=text("0")),
    Column("reason", Text, nullable=True),
    Column("error_code", Integer, nullable=True),  # WhatsApp's, when it refused or failed it
    Column("error", Text, nullable=True),  # why it failed, for operators (`failures.explain`)
    Column("operator", String(100), nullable=True),
    Column("latency_ms", BigInteger, nullable=True),
    Column("media_id", String(256), nullable=True),  # customer media, see `media`
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_messages_conversation_time", "conversation_id", "occurred_at", "id"),
    Index(
        "uq_messages_inbound",
        "wa_message_id",
        unique=True,
        postgresql_where=text("direction = 'in'"),
    ),
    Index(
        "uq_messages_command",
        "command_id",
        unique=True,
        postgresql_where=text("direction = 'out'"),
    ),
)

# Customer media: recorded `pending` with its message, downloaded by `media.worker`. Status:
# pending -> downloading (claimed until `due_at`) -> downloaded | failed; `pending` again
# (with a later `due_at`) after a transient failure.
media = Table(
    "media",
    metadata,
    Column("media_id", String(256), primary_key=True),
    Column("conversation_id", String(64), nullable=False),
    Column("wa_message_id", String(256), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("voice", Boolean, nullable=False, server_default=text("false")),
    Column("mime_type", String(255), nullable=True),
    Column("filename", String(255), nullable=True),
    Column("webhook_sha256", String(100), nullable=True),
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("due_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("claim_id", UUID(as_uuid=True), nullable=True),
    Column("reason", Text, nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("content", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("downloaded_at", DateTime(timezone=True), nullable=True),
    Index("ix_media_due", "due_at", postgresql_where=text("status IN ('pending', 'downloading')")),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("operator", String(100), nullable=False),
    Column("action", String(50), nullable=False),
    Column("conversation_id", String(64), nullable=True),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)


# `OPERATOR_API_TRANSCRIPT_RETENTION_DAYS` (off by default): transcript messages by when they
# happened, customer media by when it was recorded (a download still due stays). Conversation
# rows (control state, a few hundred bytes) and the audit log are kept.
TRANSCRIPT_RETENTION = [
    oldest_first("messages", "occurred_at"),
    oldest_first("media", "created_at", where="status NOT IN ('pending', 'downloading')"),
]
