"""The sender's own Redis key names (the shared ones are in `baton_shared.streams.names`)."""

from __future__ import annotations


def number_bucket(phone_number_id: str) -> str:
    """The limit of one business number's throughput (messages per second): its next slot."""
    return f"sender:pace:number:{phone_number_id}"


def customer_bucket(phone_number_id: str, customer: str) -> str:
    """The pair rate between one business number and one customer: its next slot."""
    return f"sender:pace:pair:{phone_number_id}:{customer}"


def auth_pause() -> str:
    """Set (with a TTL) after a token error: every replica pauses sending until it expires."""
    return "sender:auth-paused"


def number_pause(phone_number_id: str) -> str:
    """Set (with a TTL) after WhatsApp answered 130429 for the number: every replica holds that
    number's sends until it expires."""
    return f"sender:paused:number:{phone_number_id}"
