"""Ingress settings: rotation, allow-list, and no placeholder secrets outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from baton_ingress.settings import IngressSettings
from baton_shared.runtime import _secret_values

DB = "postgresql+asyncpg://u:p@localhost/db"


def make(**env: str) -> IngressSettings:
    values = {"DATABASE_URL": DB, "WA_VERIFY_TOKEN": "verify-123", "WA_APP_SECRET": "a1"} | env
    return IngressSettings(**values)  # type: ignore[arg-type]


def test_defaults_and_lists() -> None:
    settings = make(WA_APP_SECRET=" old , new ", WA_ALLOWED_PHONE_NUMBER_IDS="1,2,")
    assert settings.port == 8080
    assert settings.app_secrets == ("old", "new")
    assert settings.allowed_phone_number_ids == frozenset({"1", "2"})
    assert make().allowed_phone_number_ids == frozenset()


def test_port_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGRESS_PORT", "9999")
    assert make().port == 9999


@pytest.mark.parametrize(
    "env",
    [
        {"WA_APP_SECRET": "dev-app-secret"},
        {"WA_APP_SECRET": "real-one,changeme"},
        {"WA_VERIFY_TOKEN": "dev-verify-token"},
    ],
)
def test_placeholders_refused_in_production(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        make(BATON_ENV="production", **env)
    assert make(BATON_ENV="development", **env).is_development


def test_an_app_secret_is_required() -> None:
    with pytest.raises(ValidationError):
        make(BATON_ENV="development", WA_APP_SECRET=" , ")


def test_each_rotated_secret_is_kept_out_of_the_logs() -> None:
    values = _secret_values(make(WA_APP_SECRET="old-secret-1, new-secret-2"))
    assert {"old-secret-1", "new-secret-2", "verify-123"} <= set(values)
