"""Defensive accessors for untrusted JSON: wrong shapes become empty values, not crashes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class ParseError(ValueError):
    """A part of a webhook that cannot become a typed fact."""


def obj(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def items(value: object) -> list[Any]:
    """`value` when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def text(value: object) -> str | None:
    """`value` as a non-empty string (numbers included), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value) or None
    return None


def required(container: dict[str, Any], key: str, what: str) -> str:
    """`container[key]` as a non-empty string, or a ParseError naming what is missing."""
    value = text(container.get(key))
    if value is None:
        raise ParseError(f"{what} without `{key}`")
    return value


def timestamp(value: object, fallback: datetime) -> datetime:
    """A WhatsApp timestamp (Unix seconds, usually a string) in UTC; `fallback` if unusable."""
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return fallback
