"""`baton-ingress replay --since` accepts ISO times and durations."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from baton_ingress.replay import parse_when

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-10-31T08:00:00+00:00", datetime(2026, 10, 31, 8, tzinfo=UTC)),
        ("2026-10-31T08:00:00", datetime(2026, 10, 31, 8, tzinfo=UTC)),
        ("2026-10-31", datetime(2026, 10, 31, tzinfo=UTC)),
        ("90m", NOW - timedelta(minutes=90)),
        ("7d", NOW - timedelta(days=7)),
        ("30s", NOW - timedelta(seconds=30)),
    ],
)
def test_parse_when(value: str, expected: datetime) -> None:
    assert parse_when(value, now=NOW) == expected


def test_parse_when_refuses_nonsense() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_when("last tuesday")
