"""Settings refuse nonsense at start, with messages that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from baton_shared.cli import load_settings
from baton_shared.settings import BaseServiceSettings

DB = "postgresql+asyncpg://u@localhost/db"


class WithSecret(BaseServiceSettings):
    wa_app_secret: str = ""

    def secret_fields(self) -> tuple[str, ...]:
        return ("wa_app_secret",)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BATON_ENV", "DATABASE_URL", "REDIS_URL", "WA_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize("secret", ["", "changeme", "dev-secret", "emulator"])
def test_placeholder_secret_refused_in_production(secret: str) -> None:
    with pytest.raises(ValidationError, match="WA_APP_SECRET must be set to a real secret"):
        WithSecret(database_url=DB, wa_app_secret=secret)


def test_placeholder_secret_accepted_in_development() -> None:
    settings = WithSecret(database_url=DB, wa_app_secret="dev-secret", baton_env="development")
    assert settings.is_development


def test_real_secret_accepted_in_production() -> None:
    assert WithSecret(database_url=DB, wa_app_secret="s3cr3t-from-meta").baton_env == "production"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("database_url", "mysql://x/y", "DATABASE_URL must be a PostgreSQL URL"),
        ("redis_url", "http://localhost", "REDIS_URL must start with"),
        ("max_deliveries", 0, "greater than or equal to 1"),
        ("db_pool_size", 0, "greater than or equal to 1"),
        ("inbox_retention_days", 7, "greater than or equal to 8"),
        ("baton_nice", -1, "greater than or equal to 0"),
        ("baton_nice", 20, "less than or equal to 19"),
        ("publish_dedupe_seconds", 59, "greater than or equal to 60"),
    ],
)
def test_bad_values_are_refused(field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {"database_url": DB, "baton_env": "development", field: value}
    with pytest.raises(ValidationError, match=message):
        BaseServiceSettings(**fields)  # type: ignore[arg-type]


def test_settings_come_from_the_environment_and_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://a@b/c\nMAX_DELIVERIES=7\n")
    monkeypatch.setenv("BATON_ENV", "test")
    settings = BaseServiceSettings()  # type: ignore[call-arg]
    assert settings.database_url == "postgresql://a@b/c"
    assert settings.max_deliveries == 7


def test_load_settings_exits_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_settings(BaseServiceSettings)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid settings for BaseServiceSettings" in err
    assert "DATABASE_URL" in err
