"""The buffer's tables: conversations (turn counter, turn in flight), messages, turns.

PostgreSQL is the source of truth for which messages belong to which turn and which turn is
in flight; Redis only holds timers and claims (see `baton_buffer.timers`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from baton_shared.db.retention import Prune

SCHEMA = "buffer"

metadata = MetaData(schema=SCHEMA)

conversations = Table(
    "conversations",
    metadata,
    Column("conversation_id", String(64), primary_key=True),
    Column("phone_number_id", String(64), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("last_sequence", Integer, nullable=False, server_default="0"),
    Column("in_flight_turn_id", UUID(as_uuid=True), nullable=True),
    Column("in_flight_since", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

turns = Table(
    "turns",
    metadata,
    Column("turn_id", UUID(as_uuid=True), primary_key=True),
    Column("conversation_id", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("closed_by", String(32), nullable=False),
    Column("message_count", Integer, nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("timed_out_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("conversation_id", "sequence", name="turns_conversation_sequence_key"),
)

messages = Table(
    "messages",
    metadata,
    Column("message_id", String(256), primary_key=True),
    Column("arrival_seq", BigInteger, Identity(always=True), nullable=False, unique=True),
    Column("conversation_id", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("wa_timestamp", DateTime(timezone=True), nullable=False),
    Column("arrived_at", DateTime(timezone=True), nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("correlation_id", UUID(as_uuid=True), nullable=False),
    Column("traceparent", String(64), nullable=False),
    Column("payload", JSONB, nullable=False),
    # The turn the message went out in (no foreign key: see migration 0004).
    Column("turn_id", UUID(as_uuid=True), nullable=True),
    # The `wa.inbound` entry it came in (its id as ms, seq): the order of messages of one
    # WhatsApp second, whichever replica recorded them first (0, 0 before migration 0005).
    Column("stream_ms", BigInteger, nullable=False, server_default="0"),
    Column("stream_seq", BigInteger, nullable=False, server_default="0"),
)


# Retention (`RETENTION_DAYS`): a message goes once its turn is out and done (not in flight),
# and the turn with it, in one statement; messages still waiting for a turn, and in-flight
# turns, stay whatever their age. A turn's messages all arrived before it was released, so a
# turn past the retention has only messages past it.
RETENTION = [
    Prune(
        "messages",
        text(
            "WITH gone AS (DELETE FROM messages WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM messages WHERE arrived_at < now() - CAST(:keep AS interval)"
            " AND turn_id IS NOT NULL AND turn_id NOT IN ("
            "SELECT in_flight_turn_id FROM conversations WHERE in_flight_turn_id IS NOT NULL)"
            " LIMIT :limit)) RETURNING turn_id), "
            "turns_gone AS (DELETE FROM turns WHERE turn_id IN (SELECT turn_id FROM gone)) "
            "SELECT count(*) FROM gone"
        ),
        counts_rows=True,
    ),
]
