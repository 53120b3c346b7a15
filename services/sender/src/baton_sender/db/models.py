"""The sender's tables: every outbound message with its delivery state, and service windows."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from baton_shared.db.retention import oldest_first

SCHEMA = "sender"
metadata = MetaData(schema=SCHEMA)

# One row per WhatsApp message to send. A command becomes several rows only when its text is
# longer than WhatsApp's 4,096 characters (parts 0..n-1). A customer's messages leave in the order
# of the `wa.outbound` entries that asked for them (`stream_ms`, `stream_seq`: the entry id), then
# `seq` (the parts of one command; rows recorded before migration 0004 have (0, 0)): the order
# they were produced in, whichever sender replica recorded them first.
messages = Table(
    "messages",
    metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("command_id", String(200), nullable=False),
    Column("part", Integer, nullable=False, server_default="0"),
    Column("parts", Integer, nullable=False, server_default="1"),
    Column("phone_number_id", String(64), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("conversation_id", String(200), nullable=False),
    Column("author", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("text", Text, nullable=True),
    Column("control_epoch", BigInteger, nullable=True),
    Column("command", JSONB, nullable=False),
    Column("request_event", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("wa_message_id", String(200), nullable=True, unique=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("not_before", DateTime(timezone=True), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("reason", String(64), nullable=True),
    Column("error", JSONB, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status_at", DateTime(timezone=True), nullable=True),
    Column("stream_ms", BigInteger, nullable=False, server_default="0"),
    Column("stream_seq", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("command_id", "part", name="messages_command_part"),
    Index(
        "messages_pending",
        "phone_number_id",
        "recipient",
        "stream_ms",
        "stream_seq",
        "seq",
        postgresql_where=text("status IN ('queued', 'claimed', 'calling')"),
    ),
    Index(
        "messages_queued",
        "stream_ms",
        "stream_seq",
        "seq",
        postgresql_where=text("status = 'queued'"),
    ),
)

# The customer-service window: when each customer last wrote to each business number.
windows = Table(
    "windows",
    metadata,
    Column("phone_number_id", String(64), primary_key=True),
    Column("customer", String(64), primary_key=True),
    Column("last_inbound_at", DateTime(timezone=True), nullable=False),
)

# Retention (`RETENTION_DAYS`): messages whose sending is over, by their last change (a status
# WhatsApp reports later for one of them is then ignored as unknown); messages still queued
# or being sent stay whatever their age. A window that old is long closed, which is what no
# row means.
RETENTION = [
    oldest_first("messages", "updated_at", where="status NOT IN ('queued', 'claimed', 'calling')"),
    oldest_first("windows", "last_inbound_at"),
]
