"""The buffer writes its `TurnReady` entries' JSON itself (`release._turn_ready`): what it
writes must be what the `TurnReady` model would have written, read back by the model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
from asyncpg.pgproto import pgproto

from baton_buffer.context import PRODUCER
from baton_buffer.release import _turn_ready, turn_id_for
from baton_shared.events import (
    InboundMedia,
    InboundMessage,
    MessageType,
    Turn,
    TurnCloseReason,
    TurnReady,
    new_traceparent,
    parse_event,
    trace_id_of,
)
from baton_shared.streams import names


def _row(message: InboundMessage, seq: int) -> SimpleNamespace:
    """A pending message as `repo.pending_messages_of` returns it (ids in asyncpg's UUID type)."""
    return SimpleNamespace(
        arrival_seq=seq,
        payload=message.model_dump_json(),
        event_id=pgproto.UUID(str(uuid.uuid4())),
        correlation_id=pgproto.UUID(str(uuid.uuid4())),
        traceparent=new_traceparent(),
    )


def _read(fields: dict[str, str]) -> TurnReady:
    """The event in stream fields, as a consumer of `conv.turns` reads it."""
    event = parse_event(fields["event_type"], int(fields["schema_version"]), fields["body"])
    assert isinstance(event, TurnReady)
    return event


def test_the_entry_reads_back_as_the_turn_ready_the_model_would_build() -> None:
    at = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
    messages = [
        InboundMessage(
            message_id="wamid.1",
            phone_number_id="1000001",
            wa_id="4915112345678",
            timestamp=at,
            type=MessageType.TEXT,
            text='hi "there" \\ é 🙂\n',
        ),
        InboundMessage(
            message_id="wamid.2",
            phone_number_id="1000001",
            wa_id="4915112345678",
            timestamp=at + timedelta(seconds=1),
            type=MessageType.IMAGE,
            media=InboundMedia(id="media-1", mime_type="image/jpeg", caption="my order"),
        ),
    ]
    rows = [_row(m, n) for n, m in enumerate(messages, start=1)]
    conv = SimpleNamespace(
        conversation_id="conv-1", phone_number_id="1000001", customer_id="4915112345678"
    )
    turn_id = turn_id_for("conv-1", 3)

    staged = _turn_ready(conv, turn_id, 3, TurnCloseReason.MAX_MESSAGES, rows)

    event = _read(staged.fields)
    assert staged.stream == names.CONV_TURNS == TurnReady.stream
    assert staged.event_id == event.event_id
    assert staged.fields["event_id"] == str(event.event_id)
    assert staged.fields["event_type"] == event.event_type
    assert staged.fields["schema_version"] == str(event.schema_version)
    assert staged.fields["conversation_id"] == "conv-1" == event.conversation_id
    assert event.payload == Turn(
        turn_id=turn_id,
        phone_number_id="1000001",
        wa_id="4915112345678",
        sequence=3,
        messages=messages,
        closed_by=TurnCloseReason.MAX_MESSAGES,
    )
    cause = rows[-1]
    assert event.producer == PRODUCER
    assert event.correlation_id == cause.correlation_id
    assert event.causation_id == cause.event_id
    assert trace_id_of(event.traceparent) == trace_id_of(cause.traceparent)
    assert event.traceparent != cause.traceparent  # a new span under the cause's trace
    assert abs((datetime.now(UTC) - event.occurred_at).total_seconds()) < 60
    # The same JSON as the model's own, key for key.
    assert orjson.loads(staged.fields["body"]) == orjson.loads(event.model_dump_json())


def test_the_turn_continues_the_trace_of_its_latest_message() -> None:
    message = InboundMessage(
        message_id="wamid.3",
        phone_number_id="1000001",
        wa_id="491",
        timestamp=datetime.now(UTC),
        type=MessageType.TEXT,
        text="x",
    )
    late, early = _row(message, 9), _row(message, 2)
    conv = SimpleNamespace(conversation_id="c", phone_number_id="1000001", customer_id="491")

    staged = _turn_ready(conv, turn_id_for("c", 1), 1, TurnCloseReason.QUIET, [late, early])

    event = _read(staged.fields)
    assert event.causation_id == late.event_id
    assert event.correlation_id == late.correlation_id
