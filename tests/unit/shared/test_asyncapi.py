"""The committed AsyncAPI document is what the code generates, and it hangs together."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from baton_shared.events import CATALOGUE, asyncapi
from baton_shared.streams import names

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "docs" / "asyncapi.yaml"
DOC = asyncapi.document()
SERVICE_DIRS = {
    "ingress": "ingress",
    "buffer": "buffer",
    "agent": "agent",
    "sender": "sender",
    "operator-api": "operator-api",
}


def refs(node: Any) -> Iterator[str]:
    """Every `$ref` value anywhere in a document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """Follow a local JSON pointer; KeyError when it points nowhere."""
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_committed_document_is_up_to_date() -> None:
    assert COMMITTED.exists(), "docs/asyncapi.yaml is missing: run `make docs`"
    assert COMMITTED.read_text(encoding="utf-8") == asyncapi.render(), (
        "docs/asyncapi.yaml is stale: run `make docs` and commit the result"
    )


def test_committed_document_parses_to_the_generated_data() -> None:
    assert yaml.safe_load(COMMITTED.read_text(encoding="utf-8")) == DOC


def test_rendering_is_deterministic() -> None:
    assert asyncapi.render() == asyncapi.render()


def test_every_stream_and_its_dead_letter_stream_is_a_channel() -> None:
    for stream in names.ALL_STREAMS:
        assert DOC["channels"][stream]["address"] == stream
        assert DOC["channels"][names.dlq(stream)]["address"] == names.dlq(stream)
    assert len(DOC["channels"]) == 2 * len(names.ALL_STREAMS)


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda c: c.__name__)
def test_every_event_is_a_message_on_its_stream(cls: Any) -> None:
    key = asyncapi.message_id(cls)
    channel = DOC["channels"][cls.stream]
    assert key in channel["messages"]
    message = resolve(DOC, channel["messages"][key]["$ref"])
    assert message["name"] == asyncapi.event_type_of(cls)
    assert message["x-schema-version"] == asyncapi.schema_version_of(cls)
    assert message["x-producers"], f"{key} has no producer in asyncapi.SENDS"
    headers = message["headers"]["properties"]
    assert set(headers) == {"event_id", "event_type", "schema_version", "conversation_id"}
    assert headers["event_type"]["const"] == asyncapi.event_type_of(cls)
    payload = resolve(DOC, message["payload"]["$ref"])
    assert payload["properties"]["event_type"]["const"] == asyncapi.event_type_of(cls)
    assert {"event_id", "occurred_at", "traceparent", "payload"} <= set(payload["properties"])
    assert payload["properties"]["event_id"]["description"]  # from the envelope's docstring


def test_the_stream_entry_schema_names_the_five_flat_fields() -> None:
    entry = DOC["components"]["schemas"]["StreamEntry"]
    assert set(entry["properties"]) == {
        "event_id",
        "event_type",
        "schema_version",
        "conversation_id",
        "body",
    }


def test_dead_letter_fields_match_the_consumer() -> None:
    consumer = (ROOT / "shared/src/baton_shared/streams/consumer.py").read_text()
    written = set(re.findall(r'"(dlq_\w+)":', consumer))
    dead_letter = DOC["components"]["messages"]["dead_letter"]
    assert set(dead_letter["headers"]["properties"]) == written


def test_every_ref_resolves() -> None:
    found = list(refs(DOC))
    assert found
    for ref in found:
        resolve(DOC, ref)


def test_operation_messages_belong_to_the_operation_channel() -> None:
    for name, operation in DOC["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel_ref = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), name


def test_every_event_type_in_the_tables_exists() -> None:
    known = {asyncapi.event_type_of(cls) for cls in CATALOGUE}
    sent = {t for types in asyncapi.SENDS.values() for t in types}
    assert sent == known
    for streams in asyncapi.RECEIVES.values():
        assert set(streams) <= set(names.ALL_STREAMS)


@pytest.mark.parametrize("service", sorted(asyncapi.RECEIVES))
def test_receive_table_matches_the_services_consumer(service: str) -> None:
    source = (ROOT / "services" / SERVICE_DIRS[service]).glob("src/*/consumer.py")
    text = "".join(p.read_text() for p in source)
    consumed = {getattr(names, c) for c in re.findall(r"names\.((?:WA|CONV)_\w+)", text)}
    assert consumed == set(asyncapi.RECEIVES[service])


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.yaml"
    assert asyncapi.main([str(target), "--check"]) == 1
    assert asyncapi.main([str(target)]) == 0
    assert asyncapi.main([str(target), "--check"]) == 0
    target.write_text(target.read_text() + "# edited\n")
    assert asyncapi.main([str(target), "--check"]) == 1


def test_the_consumer_guide_covers_every_stream_and_dead_letter_field() -> None:
    guide = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    for stream in names.ALL_STREAMS:
        assert f"`{stream}`" in guide, stream
    for field in asyncapi.DLQ_FIELDS:
        assert f"`{field}`" in guide, field
    for cls in CATALOGUE:
        assert asyncapi.event_type_of(cls) in guide, cls.__name__
