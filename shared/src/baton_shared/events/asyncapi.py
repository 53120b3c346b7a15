"""The AsyncAPI 3.0 document of every stream and event, generated from the code.

`python -m baton_shared.events.asyncapi [PATH]` (or `make docs`) writes `docs/asyncapi.yaml`;
`--check` exits 1 when the file differs from what the code would generate. The output is
deterministic (sorted keys), so the committed file changes only when the catalogue does.

Streams come from `baton_shared.streams.names`, events from `CATALOGUE` (payload schemas from
the pydantic models, property descriptions from their `Attributes:` docstrings), and who sends
and receives what from the `SENDS` and `RECEIVES` tables below.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from baton_shared.events.catalogue import CATALOGUE
from baton_shared.events.envelope import Event
from baton_shared.streams import names

ASYNCAPI_VERSION = "3.0.0"
DOC_VERSION = "1.0.0"
DEFAULT_OUTPUT = Path("docs/asyncapi.yaml")
SCHEMA_REF = "#/components/schemas/{model}"

# Which service appends which event types (the producer), and which streams each service's
# consumer group reads. Keep in step with each service's consumer.py and design.md.
SENDS: dict[str, tuple[str, ...]] = {
    "ingress": (
        "webhook.received",
        "inbound.message_received",
        "inbound.status_received",
        "inbound.platform_error_received",
    ),
    "buffer": ("conversation.turn_ready",),
    "agent": (
        "outbound.message_requested",
        "conversation.intervention_requested",
        "conversation.turn_completed",
    ),
    "sender": (
        "outbound.message_sent",
        "outbound.message_failed",
        "outbound.message_suppressed",
        "outbound.status_changed",
    ),
    "operator-api": (
        "conversation.taken_over",
        "conversation.handed_back",
        "conversation.awaiting_human",
        "conversation.resolved",
        "conversation.reopened",
        "outbound.message_requested",
    ),
}
RECEIVES: dict[str, tuple[str, ...]] = {
    "ingress": (names.WA_WEBHOOKS,),
    "buffer": (names.WA_INBOUND, names.CONV_TURNS_DONE),
    "agent": (names.CONV_TURNS, names.CONV_CONTROL, names.WA_OUTBOUND_RESULTS),
    "sender": (names.WA_OUTBOUND, names.WA_STATUSES, names.WA_INBOUND),
    "operator-api": (names.WA_INBOUND, names.WA_OUTBOUND_RESULTS, names.CONV_CONTROL),
}

ENTRY_FIELDS = {
    "event_id": "the envelope's event_id (UUID); de-duplicate on it",
    "event_type": "the envelope's event_type, for routing without parsing the body",
    "schema_version": "the envelope's schema_version, as a decimal string",
    "conversation_id": "the envelope's conversation_id, or an empty string",
    "body": "the whole envelope as JSON text (the message payload below)",
}
DLQ_FIELDS = {
    "dlq_stream": "the stream the entry came from (without the key prefix)",
    "dlq_group": "the consumer group that gave up on it",
    "dlq_entry_id": "its entry id in the original stream",
    "dlq_deliveries": "how many times it was delivered, as a decimal string",
    "dlq_error": "the last error (exception type and message, at most 2000 characters)",
}


def event_type_of(cls: type[Event]) -> str:
    """The event type an event class publishes."""
    return str(cls.model_fields["event_type"].default)


def schema_version_of(cls: type[Event]) -> int:
    """The schema version an event class publishes."""
    return int(cls.model_fields["schema_version"].default)


def message_id(cls: type[Event]) -> str:
    """The component id of an event's message, e.g. `inbound.message_received.v1`."""
    return f"{event_type_of(cls)}.v{schema_version_of(cls)}"


def _attributes(cls: type) -> dict[str, str]:
    """`name: text` lines of the `Attributes:` docstring sections along the class's MRO."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = inspect.cleandoc(klass.__dict__.get("__doc__") or "")
        _, _, section = doc.partition("Attributes:\n")
        name = ""
        for line in section.splitlines():
            match = re.match(r"^    (\w+): (.*)$", line)
            if match:
                name, found[match[1]] = match[1], match[2]
            elif line.startswith("        ") and name:
                found[name] += " " + line.strip()
            elif line.strip():
                break
    return found


def _summary(cls: type) -> str:
    """The docstring without its `Attributes:` section."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    return doc.partition("Attributes:")[0].strip()


def _models(annotation: Any, seen: dict[str, type]) -> None:
    """Collect every pydantic model and enum class reachable from a type annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel | Enum):
        if annotation.__name__ in seen:
            return
        seen[annotation.__name__] = annotation
        if issubclass(annotation, BaseModel):
            for field in annotation.model_fields.values():
                _models(field.annotation, seen)
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            _models(arg, seen)


def _describe(schema: dict[str, Any], cls: type | None) -> dict[str, Any]:
    """Move the `Attributes:` docstring of the schema's class onto its properties."""
    if cls is None:
        return schema
    if schema.get("description"):
        schema["description"] = _summary(cls)
    attributes = _attributes(cls)
    for name, prop in schema.get("properties", {}).items():
        if name in attributes:
            prop["description"] = attributes[name]
    return schema


def schemas() -> dict[str, Any]:
    """Every event's envelope schema and each model they use, keyed by class name."""
    classes: dict[str, type] = {}
    for event in CATALOGUE:
        _models(event, classes)
    found: dict[str, Any] = {}
    for event in CATALOGUE:
        schema = event.model_json_schema(ref_template=SCHEMA_REF)
        parts = {**schema.pop("$defs", {}), event.__name__: schema}
        for name, part in parts.items():
            part = _describe(part, classes.get(name))
            if found.setdefault(name, part) != part:
                raise ValueError(f"two different schemas are named {name}")
    return found


def _entry_schema(fields: dict[str, str], **consts: str) -> dict[str, Any]:
    properties = {
        name: {"type": "string", "description": text}
        | ({"const": consts[name]} if name in consts else {})
        for name, text in fields.items()
    }
    return {"type": "object", "required": sorted(fields), "properties": properties}


def _message(cls: type[Event]) -> dict[str, Any]:
    headers = {k: v for k, v in ENTRY_FIELDS.items() if k != "body"}
    return {
        "name": event_type_of(cls),
        "title": f"{event_type_of(cls)} v{schema_version_of(cls)}",
        "summary": _summary(cls),
        "contentType": "application/json",
        "x-schema-version": schema_version_of(cls),
        "x-producers": sorted(s for s, types_ in SENDS.items() if event_type_of(cls) in types_),
        "headers": _entry_schema(
            headers,
            event_type=event_type_of(cls),
            schema_version=str(schema_version_of(cls)),
        ),
        "payload": {"$ref": SCHEMA_REF.format(model=cls.__name__)},
        "description": (
            "One stream entry with the flat fields `event_id`, `event_type`, `schema_version`, "
            "`conversation_id` (the headers here) and `body`: the envelope below as JSON text."
        ),
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "dead_letter",
        "title": "dead-lettered entry",
        "summary": "An entry a consumer group gave up on after repeated failures.",
        "contentType": "application/json",
        "headers": _entry_schema(DLQ_FIELDS),
        "payload": {"$ref": SCHEMA_REF.format(model="StreamEntry")},
        "description": (
            "The original entry's fields copied unchanged (`body` included), plus the `dlq_*` "
            "fields in the headers. The body is whatever the original stream carries; it may "
            "be unparseable, which is often why it is here."
        ),
    }


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)}


def _channels(by_stream: dict[str, list[type[Event]]]) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for stream in names.ALL_STREAMS:
        channels[stream] = {
            "address": stream,
            "title": stream,
            "description": f"Redis stream `{stream}` (key: REDIS_PREFIX + `{stream}`).",
            "messages": {
                message_id(cls): _ref("components", "messages", message_id(cls))
                for cls in by_stream.get(stream, [])
            },
        }
        dlq = names.dlq(stream)
        channels[dlq] = {
            "address": dlq,
            "title": dlq,
            "description": f"Dead letters of `{stream}`: entries a consumer group gave up on.",
            "messages": {"dead_letter": _ref("components", "messages", "dead_letter")},
        }
    return channels


def _operations(by_stream: dict[str, list[type[Event]]]) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for service, event_types in SENDS.items():
        for stream, classes in by_stream.items():
            sent = [cls for cls in classes if event_type_of(cls) in event_types]
            if sent:
                operations[f"{service}.send.{stream}"] = {
                    "action": "send",
                    "title": f"{service} appends to {stream}",
                    "channel": _ref("channels", stream),
                    "messages": [_ref("channels", stream, "messages", message_id(c)) for c in sent],
                }
    for service, streams in RECEIVES.items():
        for stream in streams:
            operations[f"{service}.receive.{stream}"] = {
                "action": "receive",
                "title": f"{service} reads {stream} with consumer group `{service}`",
                "channel": _ref("channels", stream),
                "messages": [
                    _ref("channels", stream, "messages", message_id(c))
                    for c in by_stream.get(stream, [])
                ],
            }
            dlq = names.dlq(stream)
            operations[f"{service}.send.{dlq}"] = {
                "action": "send",
                "title": f"{service} dead-letters entries of {stream}",
                "channel": _ref("channels", dlq),
                "messages": [_ref("channels", dlq, "messages", "dead_letter")],
            }
    return operations


def document() -> dict[str, Any]:
    """The AsyncAPI document as plain data."""
    by_stream: dict[str, list[type[Event]]] = {}
    for cls in CATALOGUE:
        by_stream.setdefault(cls.stream, []).append(cls)
    components_schemas = schemas()
    components_schemas["StreamEntry"] = _entry_schema(ENTRY_FIELDS)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Baton event streams",
            "version": DOC_VERSION,
            "description": (
                "Every Redis stream Baton publishes and the events on it. Subscribe with a "
                "consumer group of your own; delivery is at least once (de-duplicate on "
                "event_id). See docs/events.md. Generated by `make docs` from the code: do "
                "not edit by hand."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "redis": {
                "host": "redis:6379",
                "protocol": "redis",
                "description": "The deployment's Redis; stream keys carry REDIS_PREFIX.",
            }
        },
        "channels": _channels(by_stream),
        "operations": _operations(by_stream),
        "components": {
            "messages": {
                **{message_id(cls): _message(cls) for cls in CATALOGUE},
                "dead_letter": _dead_letter_message(),
            },
            "schemas": components_schemas,
        },
    }


def render() -> str:
    """The document as YAML text, keys sorted so the output is stable."""
    header = "# Generated by `make docs` (python -m baton_shared.events.asyncapi). Do not edit.\n"
    return header + yaml.safe_dump(document(), sort_keys=True, allow_unicode=True, width=100)


def main(argv: list[str] | None = None) -> int:
    """Write the document, or with `--check` report whether the file is up to date."""
    parser = argparse.ArgumentParser(prog="python -m baton_shared.events.asyncapi")
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    path: Path = args.path
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
