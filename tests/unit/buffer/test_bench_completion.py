"""The buffer benchmark's stand-in agent writes its `TurnCompleted` entries by hand (they are
cheaper so); they must be what `TurnCompleted.create` would have written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from bench.buffer_release import completion_fields

from baton_shared.events import (
    InboundMessage,
    MessageType,
    Turn,
    TurnCloseReason,
    TurnCompleted,
    TurnOutcome,
    TurnReady,
    TurnResult,
    conversation_id_for,
)
from baton_shared.events.catalogue import parse_event
from baton_shared.streams.bus import entry_fields


def test_the_stand_in_agents_completion_is_a_valid_turn_completed() -> None:
    message = InboundMessage(
        message_id="wamid.x",
        phone_number_id="100000000002",
        wa_id="447700900123",
        timestamp=datetime.now(UTC),
        type=MessageType.TEXT,
        text="hi",
    )
    turn = Turn(
        turn_id=uuid.uuid4(),
        phone_number_id=message.phone_number_id,
        wa_id=message.wa_id,
        sequence=1,
        messages=[message],
        closed_by=TurnCloseReason.QUIET,
    )
    ready = TurnReady.create(
        turn,
        producer="buffer",
        conversation_id=conversation_id_for(message.phone_number_id, message.wa_id),
    )

    fields = completion_fields(orjson.loads(entry_fields(ready)["body"]))
    got = parse_event(fields["event_type"], int(fields["schema_version"]), fields["body"])

    expected = TurnCompleted.create(
        TurnResult(
            turn_id=turn.turn_id,
            phone_number_id=turn.phone_number_id,
            wa_id=turn.wa_id,
            outcome=TurnOutcome.ANSWERED,
        ),
        producer="bench",
        cause=ready,
    )
    assert isinstance(got, TurnCompleted)
    assert fields["event_id"] == str(got.event_id)
    assert fields["conversation_id"] == ready.conversation_id
    same = {"event_id", "occurred_at", "traceparent"}  # fresh per event
    assert got.model_dump(exclude=same) == expected.model_dump(exclude=same)
