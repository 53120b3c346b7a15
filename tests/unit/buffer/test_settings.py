"""Buffer settings: defaults from the run contract, zero accepted, nonsense refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from baton_buffer.settings import BufferSettings

BASE = {"DATABASE_URL": "postgresql+asyncpg://u:p@h/db"}


def test_defaults_follow_the_run_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "BUFFER_PORT",
        "BUFFER_QUIET_SECONDS",
        "BUFFER_MAX_SECONDS",
        "BUFFER_MAX_MESSAGES",
    ):
        monkeypatch.delenv(name, raising=False)
    s = BufferSettings.model_validate(BASE)
    assert (s.port, s.quiet_seconds, s.max_seconds, s.max_messages) == (8082, 4, 15, 20)
    assert s.stuck_turn_seconds == 300


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", BASE["DATABASE_URL"])
    monkeypatch.setenv("BUFFER_QUIET_SECONDS", "0")
    monkeypatch.setenv("BUFFER_MAX_SECONDS", "0")
    monkeypatch.setenv("BUFFER_MAX_MESSAGES", "0")
    monkeypatch.setenv("BUFFER_STUCK_TURN_SECONDS", "7")
    s = BufferSettings()  # type: ignore[call-arg]
    assert (s.quiet_seconds, s.max_seconds, s.max_messages, s.stuck_turn_seconds) == (0, 0, 0, 7)


@pytest.mark.parametrize(
    "bad",
    [
        {"BUFFER_QUIET_SECONDS": -1},
        {"BUFFER_MAX_SECONDS": -1},
        {"BUFFER_MAX_MESSAGES": -1},
        {"BUFFER_STUCK_TURN_SECONDS": 0},
    ],
)
def test_nonsense_is_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        BufferSettings.model_validate(BASE | bad)
