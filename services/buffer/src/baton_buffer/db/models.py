"""The buffer's tables: conversations (turn counter, turn in flight), messages, turns.

PostgreSQL is the source of truth for which messages belong to which turn and which turn is
in flight; Redis only holds timers and claims (see `baton_buffer.timers`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

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
    Column("turn_id", UUID(as_uuid=True), ForeignKey("buffer.turns.turn_id"), nullable=True),
)
