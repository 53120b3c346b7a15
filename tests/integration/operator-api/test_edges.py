"""Edge inputs answer 4xx, never 5xx (invariant 8), and the command line works."""

from __future__ import annotations

import httpx
import pytest

from baton_operator_api.main import cli
from baton_operator_api.settings import OperatorApiSettings
from baton_shared.streams.bus import Bus

from .conftest import NewOperator, auth, customer_writes, new_wa_id

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
        ("/api/v1/conversations", {"updated_since": "0001-01-01T00:00:00+01:00"}),
        ("/api/v1/conversations", {"updated_since": "9999-12-31T23:59:59-01:00"}),
        ("/api/v1/conversations/%00", {}),
        ("/api/v1/conversations", {"operator": "a\x00b"}),
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


async def test_a_nul_character_is_a_clear_422_and_changes_nothing(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    # PostgreSQL cannot store U+0000: the request is refused with the reason, and its
    # transaction leaves nothing behind (no takeover, no message).
    token = await new_operator()
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    refused = await client.post(
        "/api/v1/takeover", json={"wa_id": wa_id, "reason": "nul\u0000here"}, headers=auth(token)
    )
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_text"
    state = await client.get(f"/api/v1/conversations/{conversation_id}", headers=auth(token))
    assert (state.json()["mode"], state.json()["epoch"]) == ("ai", 0)

    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    message = await client.post(
        "/api/v1/operator-message", json={"wa_id": wa_id, "text": "a\u0000b"}, headers=auth(token)
    )
    assert message.status_code == 422
    page = await client.get(
        f"/api/v1/conversations/{conversation_id}/messages", headers=auth(token)
    )
    assert [m["direction"] for m in page.json()["items"]] == ["in"]
