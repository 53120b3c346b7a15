"""Defensive accessors for untrusted JSON: wrong shapes become empty values, not crashes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class ParseError(ValueError):
    """A part of a webhook that cannot become a typed fact."""


# The longest values the services' tables hold, the tightest of them: a part whose identifier
# is longer is refused (one such value in a batch's insert failed the whole body, good parts
# included); a longer name is cut. WhatsApp's own are far shorter.
MAX_ID = 256  # message and media ids
MAX_NUMBER = 64  # business number ids, customers' ids, status values
MAX_NAME = 255  # profile names, file names, MIME types


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


def required(container: dict[str, Any], key: str, what: str, *, limit: int = MAX_ID) -> str:
    """`container[key]` as a non-empty string of at most `limit` characters, or a ParseError
    naming what is missing or too long."""
    value = text(container.get(key))
    if value is None:
        raise ParseError(f"{what} without `{key}`")
    if len(value) > limit:
        raise ParseError(
            f"{what} `{key}` is {len(value)} characters long, over the {limit} allowed"
        )
    return value


def bounded(value: str | None, limit: int, what: str) -> str | None:
    """`value`, or a ParseError when it is longer than `limit` characters."""
    if value is not None and len(value) > limit:
        raise ParseError(f"{what} is {len(value)} characters long, over the {limit} allowed")
    return value


def clipped(value: str | None, limit: int = MAX_NAME) -> str | None:
    """`value` cut to `limit` characters."""
    return value if value is None or len(value) <= limit else value[:limit]


def timestamp(value: object, fallback: datetime) -> datetime:
    """A WhatsApp timestamp (Unix seconds, usually a string) in UTC; `fallback` if unusable."""
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return fallback
