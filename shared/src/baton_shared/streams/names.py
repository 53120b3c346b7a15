"""Every stream, consumer group and Redis key name Baton uses, in one place."""

from __future__ import annotations

# Streams. External consumers subscribe to these with their own consumer groups.
WA_WEBHOOKS = "wa.webhooks"
WA_INBOUND = "wa.inbound"
WA_STATUSES = "wa.statuses"
WA_OUTBOUND = "wa.outbound"
WA_OUTBOUND_RESULTS = "wa.outbound.results"
CONV_TURNS = "conv.turns"
CONV_TURNS_DONE = "conv.turns.done"
CONV_CONTROL = "conv.control"

ALL_STREAMS = (
    WA_WEBHOOKS,
    WA_INBOUND,
    WA_STATUSES,
    WA_OUTBOUND,
    WA_OUTBOUND_RESULTS,
    CONV_TURNS,
    CONV_TURNS_DONE,
    CONV_CONTROL,
)

# Streams never trimmed by length on append, so that no entry is lost however far behind
# Baton's own consumers fall (an entry may be the only copy of a webhook answered 200, of a
# customer message, of an answer to send): they are trimmed below what Baton's consumer groups
# have acknowledged, and other groups' needs are kept while the stream is short enough (see
# `streams.trim`).
ACK_TRIMMED = frozenset(ALL_STREAMS)

# Consumer groups, one per consuming service role.
GROUP_INGRESS = "ingress"
GROUP_BUFFER = "buffer"
GROUP_AGENT = "agent"
GROUP_SENDER = "sender"
GROUP_OPERATOR_API = "operator-api"
BATON_GROUPS = frozenset(
    {GROUP_INGRESS, GROUP_BUFFER, GROUP_AGENT, GROUP_SENDER, GROUP_OPERATOR_API}
)


def dlq(stream: str) -> str:
    """The dead-letter stream of `stream`."""
    return f"{stream}.dlq"


def is_dlq(stream: str) -> bool:
    """Whether `stream` is a dead-letter stream."""
    return stream.endswith(".dlq")


def published_marker(event_id: str) -> str:
    """Key that marks an event as already appended, so a re-published outbox row is dropped."""
    return f"published:{event_id}"


def failure_log(stream: str, group: str) -> str:
    """Hash of the last error per pending entry id, copied into the DLQ entry."""
    return f"failures:{stream}:{group}"


def control_state(conversation_id: str) -> str:
    """Hash {mode, epoch, operator} the operator-api writes before a control change returns;
    the sender's fencing check reads it right before every AI-authored send."""
    return f"control:{conversation_id}"
