"""`baton-agent serve` refuses a `GEMINI_MODEL` the API does not serve, and starts anyway
when it cannot ask (an outage at start must not keep the agent down)."""

from __future__ import annotations

import pytest

from baton_agent.model_check import UnknownModelError, check_model
from baton_agent.settings import AgentSettings
from baton_devtools.infra import free_port

pytestmark = pytest.mark.integration


def _settings(settings: AgentSettings, **update: object) -> AgentSettings:
    return settings.model_copy(update=update)


def test_a_served_model_passes(settings: AgentSettings) -> None:
    assert check_model(settings) is None


def test_a_mistyped_model_is_refused_naming_it(settings: AgentSettings) -> None:
    with pytest.raises(UnknownModelError, match=r"gemini-2\.5-flsh"):
        check_model(_settings(settings, gemini_model="gemini-2.5-flsh"))


def test_an_api_that_cannot_be_reached_only_warns(settings: AgentSettings) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    doubt = check_model(_settings(settings, gemini_base_url=nowhere), timeout=2)
    assert doubt is not None
    assert "could not check GEMINI_MODEL" in doubt


def test_serve_with_a_mistyped_model_exits_with_the_reason(
    gemini_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from baton_agent.main import cli

    monkeypatch.setenv("DATABASE_URL", "postgresql://x/y")
    monkeypatch.setenv("BATON_ENV", "test")
    monkeypatch.setenv("GEMINI_BASE_URL", gemini_url)
    monkeypatch.setenv("GEMINI_MODEL", "gemini-2.5-flsh")
    with pytest.raises(SystemExit) as exited:
        cli(["serve"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "GEMINI_MODEL 'gemini-2.5-flsh' is not a model" in err
    assert "Traceback" not in err
