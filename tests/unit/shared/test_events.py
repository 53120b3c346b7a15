"""Every event in the catalogue survives a JSON round trip and tolerates the unknown."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from baton_shared import events as ev
from baton_shared.events import catalogue
from baton_shared.streams.bus import entry_fields

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MESSAGE = ev.InboundMessage(
    message_id="wamid.A",
    phone_number_id="1001",
    wa_id="5511999",
    timestamp=NOW,
    type=ev.MessageType.TEXT,
    text="olá 👋",
    raw={"type": "text", "text": {"body": "olá 👋"}},
)
CONTROL = ev.ControlChange(phone_number_id="1001", wa_id="5511999", mode=ev.Mode.OPERATOR, epoch=3)
OUTCOME = ev.OutboundOutcome(command_id="c1", phone_number_id="1001", to="5511999")

SAMPLES: dict[type[ev.Event], ev.Payload] = {
    ev.WebhookReceived: ev.WebhookBody(body="{}", signature="sha256=00", received_at=NOW),
    ev.MessageReceived: MESSAGE,
    ev.StatusReceived: ev.StatusUpdate(
        message_id="wamid.B", phone_number_id="1001", status="read", timestamp=NOW
    ),
    ev.PlatformErrorReceived: ev.PlatformErrors(
        phone_number_id="1001", errors=[ev.PlatformError(code=131000, title="Something went wrong")]
    ),
    ev.TurnReady: ev.Turn(
        turn_id=uuid.uuid4(),
        phone_number_id="1001",
        wa_id="5511999",
        sequence=1,
        messages=[MESSAGE],
        closed_by=ev.TurnCloseReason.QUIET,
    ),
    ev.TurnCompleted: ev.TurnResult(
        turn_id=uuid.uuid4(), phone_number_id="1001", wa_id="5511999", outcome="answered"
    ),
    ev.ConversationTakenOver: CONTROL,
    ev.ConversationHandedBack: CONTROL,
    ev.InterventionRequested: CONTROL,
    ev.ConversationResolved: CONTROL,
    ev.ConversationReopened: CONTROL,
    ev.ConversationAwaitingHuman: CONTROL,
    ev.MessageRequested: ev.OutboundCommand(
        command_id="c1",
        phone_number_id="1001",
        to="5511999",
        author=ev.Author.AI,
        kind=ev.OutboundKind.TEXT,
        text="hi",
        control_epoch=2,
    ),
    ev.MessageSent: OUTCOME,
    ev.MessageFailed: OUTCOME,
    ev.MessageSuppressed: OUTCOME,
    ev.DeliveryStatusChanged: OUTCOME,
}


def test_every_catalogue_event_has_a_sample() -> None:
    assert set(SAMPLES) == set(catalogue.CATALOGUE)


@pytest.mark.parametrize("cls", catalogue.CATALOGUE, ids=lambda c: c.__name__)
def test_json_round_trip(cls: type[ev.Event]) -> None:
    event = cls.create(SAMPLES[cls], producer="test", conversation_id="conv-1")
    body = event.model_dump_json()
    parsed = ev.parse_event(event.event_type, event.schema_version, body)
    assert parsed == event
    assert type(parsed) is cls


def test_event_types_are_unique_dotted_facts() -> None:
    keys = list(catalogue.BY_TYPE)
    assert len(keys) == len(catalogue.CATALOGUE)
    for event_type, version in keys:
        assert "." in event_type
        assert version >= 1


def test_unknown_fields_are_ignored_and_unknown_enums_become_unknown() -> None:
    event = ev.MessageReceived.create(MESSAGE, producer="test")
    data = json.loads(event.model_dump_json())
    data["added_by_a_newer_producer"] = True
    data["payload"]["type"] = "hologram"
    data["payload"]["new_field"] = {"x": 1}
    parsed = ev.parse_event("inbound.message_received", 1, json.dumps(data))
    assert isinstance(parsed, ev.MessageReceived)
    assert parsed.payload.type is ev.MessageType.UNKNOWN


def test_unknown_event_type_is_reported() -> None:
    with pytest.raises(ev.UnknownEventError):
        ev.parse_event("inbound.telepathy_received", 1, "{}")


def test_caused_event_continues_correlation_and_trace() -> None:
    cause = ev.MessageReceived.create(MESSAGE, producer="ingress", conversation_id="conv-9")
    child = ev.TurnCompleted.create(SAMPLES[ev.TurnCompleted], producer="agent", cause=cause)
    assert child.correlation_id == cause.correlation_id
    assert child.causation_id == cause.event_id
    assert child.conversation_id == "conv-9"
    assert ev.trace_id_of(child.traceparent) == ev.trace_id_of(cause.traceparent)
    assert child.traceparent != cause.traceparent


def test_ids_are_stable() -> None:
    assert ev.conversation_id_for("1001", "55") == ev.conversation_id_for("1001", "55")
    assert ev.conversation_id_for("1001", "55") != ev.conversation_id_for("1002", "55")
    assert ev.command_id_for("turn-1", 0) == ev.command_id_for("turn-1", 0)
    assert ev.command_id_for("turn-1", 0) != ev.command_id_for("turn-1", 1)


ODD_TEXT = "".join(map(chr, range(0x20))) + '"\\/ olá 👋 \u2028\u2029 \x7f \ufeff </script>'


@pytest.mark.parametrize(
    ("body", "signature", "received_at"),
    [
        ('{"object":"whatsapp_business_account","entry":[]}', "sha256=00", NOW),
        (json.dumps({"t": ODD_TEXT}, ensure_ascii=False), "sha256=ab", NOW.replace(microsecond=7)),
        (ODD_TEXT, "sha256=\u00e9\u00ff\t", datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)),
        ("{}", "", datetime(2026, 1, 2, 3, 4, 5).astimezone()),  # another offset
    ],
)
def test_webhook_fields_are_byte_for_byte_the_models(
    body: str, signature: str, received_at: datetime
) -> None:
    """The request path's direct builder writes exactly what the pydantic envelope writes."""
    event_id = str(uuid.uuid4())
    fields = ev.webhook_received_fields(
        body, signature, received_at, event_id=event_id, producer="ingress"
    )
    written = json.loads(fields["body"])
    model = ev.WebhookReceived(
        event_id=uuid.UUID(event_id),
        occurred_at=received_at,
        producer="ingress",
        correlation_id=uuid.UUID(written["correlation_id"]),
        traceparent=written["traceparent"],
        payload=ev.WebhookBody(body=body, signature=signature, received_at=received_at),
    )
    assert fields == entry_fields(model)
    assert ev.parse_event("webhook.received", 1, fields["body"]) == model


def test_webhook_correlation_ids_are_distinct_version_4_uuids() -> None:
    def correlation_id() -> uuid.UUID:
        event_id = str(uuid.uuid4())
        fields = ev.webhook_received_fields("{}", "", NOW, event_id=event_id, producer="x")
        return uuid.UUID(json.loads(fields["body"])["correlation_id"])

    ids = [correlation_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert {(i.version, i.variant) for i in ids} == {(4, uuid.RFC_4122)}


def test_random_event_ids_are_version_4_uuids_and_distinct() -> None:
    from baton_shared.events.envelope import random_uuid

    ids = [random_uuid() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)


def test_uuid_text_is_the_text_of_the_uuid_it_describes() -> None:
    from baton_shared.events import uuid_text

    for n in range(200):
        h = f"{(n * 0x9E3779B97F4A7C15F39CC0605CEDC834) % 2**128:032x}"
        for version in (4, 5):
            assert uuid_text(h, version) == str(uuid.UUID(hex=h, version=version))
