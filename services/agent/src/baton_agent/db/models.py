"""The agent's own tables (the checkpointer's tables are LangGraph's, see migration 0003)."""

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
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA = "agent"
metadata = MetaData(schema=SCHEMA)

# Who answers each conversation, as the agent last learned from `conv.control`.
conversations = Table(
    "conversations",
    metadata,
    Column("conversation_id", String(200), primary_key=True),
    Column("phone_number_id", String(100), nullable=False),
    Column("wa_id", String(100), nullable=False),
    Column("mode", String(32), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One row per finished turn: the exactly-once record (invariant 3).
turns = Table(
    "turns",
    metadata,
    Column("turn_id", Uuid, primary_key=True),
    Column("conversation_id", String(200), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("mode", String(32), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("outputs", Integer, nullable=False),
    Column("handoff_reason", Text, nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # A conversation's recent turns: its AI answers within the hour (`repo.turn_state`).
    Index("ix_turns_conversation_completed", "conversation_id", "completed_at"),
)

# What human operators sent, waiting for the conversation's next turn to carry it into the
# thread (`turn_id` set then). The turn is the thread's only writer: operator messages written
# into the thread directly, by another replica while a turn ran, forked it and one was lost.
operator_messages = Table(
    "operator_messages",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("conversation_id", String(200), nullable=False),
    # WhatsApp's id of the message (each part of a long one has its own), else the command's.
    Column("message_key", String(200), nullable=False, unique=True),
    Column("text", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("turn_id", Uuid, nullable=True),
    Index(
        "ix_operator_messages_waiting",
        "conversation_id",
        postgresql_where=text("turn_id IS NULL"),
    ),
)

# LangGraph's checkpoint table (its DDL is LangGraph's, migration 0003), declared for reads:
# the columns the agent queries, not the whole table.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("thread_id", Text, primary_key=True),
    Column("checkpoint_ns", Text, primary_key=True),
    Column("checkpoint_id", Text, primary_key=True),
    Column("checkpoint", JSONB, nullable=False),
)
