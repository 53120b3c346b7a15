"""Backoff with jitter, and settings that refuse a placeholder token in production."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from baton_sender.dispatch.backoff import retry_delay
from baton_sender.settings import SenderSettings


def test_backoff_doubles_with_jitter_and_cap() -> None:
    rng = random.Random(7)
    delays = [retry_delay(n, base=1, cap=10, rng=rng) for n in range(1, 7)]
    for attempt, delay in enumerate(delays, start=1):
        full = min(10, 2 ** (attempt - 1))
        assert full / 2 <= delay <= full


def test_pair_rate_backoff_follows_four_to_the_x() -> None:
    rng = random.Random(1)
    assert 8 <= retry_delay(3, base=1, cap=100, code=131056, rng=rng) <= 16


def test_placeholder_token_refused_outside_development() -> None:
    url = "postgresql+asyncpg://u:p@localhost/db"
    with pytest.raises(ValidationError, match="WA_ACCESS_TOKEN"):
        SenderSettings(database_url=url, baton_env="production", wa_access_token="dev-token")
    ok = SenderSettings(database_url=url, baton_env="test")
    assert (ok.port, ok.wa_api_version, ok.wa_rate_limit_mps) == (8084, "v21.0", 80)
    assert ok.wa_graph_url == "https://graph.facebook.com"


@pytest.mark.parametrize(
    ("env", "attempts"),
    [
        ({"SENDER_MAX_ATTEMPTS": "3"}, 3),
        ({"MAX_ATTEMPTS": "4"}, 4),  # the first releases' name, still read
        ({"SENDER_MAX_ATTEMPTS": "3", "MAX_ATTEMPTS": "4"}, 3),  # the prefixed name wins
        ({}, 6),
    ],
)
def test_sending_policy_settings_are_sender_prefixed(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], attempts: int
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u:p@localhost/db")
    for name in ("SENDER_MAX_ATTEMPTS", "MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SENDER_CLAIM_LEASE_SECONDS", "7")
    settings = SenderSettings(baton_env="test")
    assert settings.max_attempts == attempts
    assert settings.claim_lease_seconds == 7
    assert SenderSettings(baton_env="test", max_attempts=9).max_attempts == 9  # by field name


def test_errors_that_last_minutes_wait_at_least_a_minute() -> None:
    rng = random.Random(3)
    for code in (131057, 4, 80007):
        delays = [retry_delay(n, base=1, cap=10, code=code, rng=rng) for n in range(1, 6)]
        assert all(60 <= d <= 90 for d in delays), (code, delays)
    assert retry_delay(1, base=1, cap=10, code=131000, rng=rng) <= 1  # others as before


def test_numbers_may_have_rates_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://u:p@localhost/db"
    monkeypatch.setenv("WA_RATE_LIMIT_MPS_BY_NUMBER", '{"106540352242922": 20, "2": 1000}')
    settings = SenderSettings(database_url=url, baton_env="test")
    assert settings.wa_rate_limit_mps_by_number == {"106540352242922": 20, "2": 1000}
    assert settings.fastest_rate_mps == 1000

    monkeypatch.setenv("WA_RATE_LIMIT_MPS_BY_NUMBER", '{"106540352242922": 5000}')
    with pytest.raises(ValidationError, match="wa_rate_limit_mps_by_number"):
        SenderSettings(database_url=url, baton_env="test")
