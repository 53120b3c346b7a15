"""Edge inputs answer 4xx, never 5xx (invariant 8), and the command line works."""

from __future__ import annotations

import httpx
import pytest

from baton_operator_api.main import cli
from baton_operator_api.settings import OperatorApiSettings

from .conftest import NewOperator, auth

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/conversations", {"updated_since": "2026-01-01T00:00:00"}),
        ("/api/v1/conversations", {"updated_since": "2026-01-01T00:00:00+05:00"}),
        ("/api/v1/conversations", {"updated_since": "yesterday"}),
        ("/api/v1/conversations", {"mode": "sleeping"}),
        ("/api/v1/conversations", {"limit": "0"}),
        ("/api/v1/conversations/%00/messages", {"after": "-1"}),
        ("/api/v1/conversations/x/messages", {"after": "99999999999999999999999"}),
        ("/api/v1/conversations/" + "x" * 65, {}),
        ("/api/v1/events", {"conversation_id": "x" * 65}),
    ],
)
async def test_edge_queries_never_answer_5xx(
    client: httpx.AsyncClient, new_operator: NewOperator, path: str, params: dict[str, str]
) -> None:
    token = await new_operator()
    response = await client.get(path, params=params, headers=auth(token))
    assert response.status_code < 500, response.text


async def test_resolve_of_an_unknown_conversation_is_404(
    client: httpx.AsyncClient, new_operator: NewOperator
) -> None:
    token = await new_operator()
    response = await client.post("/api/v1/conversations/nope/resolve", headers=auth(token))
    assert response.status_code == 404


def test_create_operator_command_prints_a_token_once(
    settings: OperatorApiSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BATON_ENV", "test")
    assert cli(["create-operator", "--name", "from-cli", "--role", "admin"]) == 0
    assert "bat_" in capsys.readouterr().out
