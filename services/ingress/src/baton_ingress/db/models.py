"""Ingress tables: the raw webhook archive and the durable de-duplication keys."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import UUID

from baton_shared.db.retention import oldest_first

SCHEMA = "ingress"
metadata = MetaData(schema=SCHEMA)

# Every accepted body, byte for byte, for audit and `baton-ingress replay`. One row per
# distinct body: WhatsApp's byte-identical redeliveries and replays do not add rows.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("body_sha256", String(64), nullable=False, unique=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("archived_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("signature", Text, nullable=False),
    Column("body", Text, nullable=False),
    Index("webhooks_received_at", "received_at"),
)

# One row per inbound WhatsApp message id ever emitted: a redelivery a week later is still
# recognised.
seen_messages = Table(
    "seen_messages",
    metadata,
    Column("message_id", String(256), primary_key=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One row per (outbound message id, raw status value) ever emitted.
seen_statuses = Table(
    "seen_statuses",
    metadata,
    Column("message_id", String(256), nullable=False),
    Column("status", String(64), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("message_id", "status"),
)

# Retention (`RETENTION_DAYS`, at least 8 days: longer than WhatsApp's 7 days of redelivery).
# The duplicate markers are written when a body is processed, after its archive row, so they
# outlive it: a replay can only re-emit bodies whose messages are still recognised.
RETENTION = [
    oldest_first("webhooks", "received_at"),
    oldest_first("seen_messages", "seen_at"),
    oldest_first("seen_statuses", "seen_at"),
]
