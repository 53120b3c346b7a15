"""OPERATOR_API_TEMPLATES_FILE: the business's approved templates are offered to operators
(listed, named in the `window_closed` refusal) and a template not among them is refused
before it reaches WhatsApp (complaint #6: "no hint that a template is needed")."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from baton_operator_api.settings import OperatorApiSettings
from baton_shared.events import utcnow
from baton_shared.streams.bus import Bus

from .conftest import NewOperator, auth, customer_writes, new_wa_id

pytestmark = pytest.mark.integration

TEMPLATES = """
templates:
  - name: order_update
    language: en_US
    category: utility
    description: Tells the customer where their order is.
    parameters: [order_number, status]
  - name: order_update
    language: es
    category: utility
"""


@pytest.fixture
def settings(settings: OperatorApiSettings, tmp_path: Path) -> OperatorApiSettings:
    """The test settings with two approved templates."""
    path = tmp_path / "templates.yaml"
    path.write_text(TEMPLATES)
    return settings.model_copy(update={"templates_file": path})


async def closed_window(bus: Bus, client: httpx.AsyncClient, token: str) -> str:
    """A customer whose last message is 25 hours old, taken over by `token`; their wa_id."""
    wa_id = new_wa_id()
    await customer_writes(bus, client, token, wa_id, at=utcnow() - timedelta(hours=25))
    taken = await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    assert taken.status_code == 200, taken.text
    return wa_id


async def test_operators_see_the_approved_templates(
    client: httpx.AsyncClient, new_operator: NewOperator
) -> None:
    r = await client.get("/api/v1/templates", headers=auth(await new_operator()))
    assert r.status_code == 200
    page = r.json()
    assert page["configured"] is True
    assert [(t["name"], t["language"]) for t in page["items"]] == [
        ("order_update", "en_US"),
        ("order_update", "es"),
    ]
    assert page["items"][0]["parameters"] == ["order_number", "status"]


async def test_the_window_refusal_names_them_and_an_unlisted_one_is_refused(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = await closed_window(bus, client, token)

    async def send(body: dict[str, object]) -> httpx.Response:
        return await client.post(
            "/api/v1/operator-message", json={"wa_id": wa_id, **body}, headers=auth(token)
        )

    text = await send({"text": "hello?"})
    assert text.status_code == 422
    assert text.json()["error"] == "window_closed"
    assert "order_update (en_US), order_update (es)" in text.json()["hint"]

    for name, language in (("order_updte", "en_US"), ("order_update", "pt_BR")):
        typo = await send({"template": {"name": name, "language": {"code": language}}})
        assert typo.status_code == 422
        assert typo.json()["error"] == "unknown_template"
        assert f"{name} ({language})" in typo.json()["detail"]
        assert "GET /api/v1/templates" in typo.json()["hint"]

    listed = await send({"template": {"name": "order_update", "language": {"code": "es"}}})
    assert listed.status_code == 202, listed.text


def test_a_bad_templates_file_stops_the_start_with_the_reason(
    settings: OperatorApiSettings, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("templates:\n  - {name: Order Update, language: en_US}\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: invalid Templates\n  templates\.0\.name"):
        OperatorApiSettings(
            database_url=settings.database_url, baton_env="test", OPERATOR_API_TEMPLATES_FILE=bad
        )
