"""OPERATOR_API_TEMPLATES_FILE: the business's approved templates are offered to operators
(listed, named in the `window_closed` refusal) and a template not among them, or sent with
body parameters other than the ones listed, is refused before it reaches WhatsApp (complaint
#6: "no hint that a template is needed"; WhatsApp's 132000 "number of parameters does not
match", which arrives only later as a failed status)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from baton_operator_api.context import ServiceContext
from baton_operator_api.db.models import audit_log, messages
from baton_operator_api.settings import OperatorApiSettings
from baton_shared.db.tables import outbox
from baton_shared.events import MessageRequested, conversation_id_for, utcnow
from baton_shared.streams import names
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, NewOperator, auth, customer_writes, new_wa_id

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


def order_update(*parameters: dict[str, Any], language: str = "en_US") -> dict[str, Any]:
    """An `order_update` template send with `parameters` in its body."""
    return {
        "name": "order_update",
        "language": {"code": language},
        "components": [{"type": "body", "parameters": list(parameters)}],
    }


def text(value: str) -> dict[str, Any]:
    """A text parameter."""
    return {"type": "text", "text": value}


async def commands_to(bus: Bus, wa_id: str) -> list[dict[str, Any]]:
    """Commands to a customer on `wa.outbound`."""
    entries = await bus.redis.xrange(bus.key(names.WA_OUTBOUND))
    payloads = [json.loads(fields["body"])["payload"] for _, fields in entries]
    return [p for p in payloads if p["to"] == wa_id]


async def written(ctx: ServiceContext, conversation_id: str) -> list[int | None]:
    """What a send writes for a conversation: outbound messages in the transcript, staged
    `MessageRequested` commands, and `message` entries in the audit log."""
    queries = [
        select(func.count()).where(
            messages.c.conversation_id == conversation_id, messages.c.direction == "out"
        ),
        select(func.count()).where(
            outbox.c.conversation_id == conversation_id,
            outbox.c.event_type == MessageRequested.model_fields["event_type"].default,
        ),
        select(func.count()).where(
            audit_log.c.conversation_id == conversation_id, audit_log.c.action == "message"
        ),
    ]
    async with ctx.db.session() as session:
        return [await session.scalar(query) for query in queries]


async def test_a_template_with_the_listed_parameters_is_sent_as_given(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = await closed_window(bus, client, token)
    templates = [
        order_update(text("A-1042"), text("shipped")),
        order_update(
            {**text("shipped"), "parameter_name": "status"},
            {**text("A-1042"), "parameter_name": "order_number"},
        ),
    ]
    for template in templates:
        sent = await client.post(
            "/api/v1/operator-message",
            json={"wa_id": wa_id, "template": template},
            headers=auth(token),
        )
        assert sent.status_code == 202, sent.text

    async def both() -> list[dict[str, Any]]:
        commands = await commands_to(bus, wa_id)
        return commands if len(commands) == 2 else []

    commands = await wait_until(both, what="both templates on wa.outbound")
    assert sorted((c["template"] for c in commands), key=json.dumps) == sorted(
        templates, key=json.dumps
    )


@pytest.mark.parametrize(
    ("parameters", "code", "reason"),
    [
        pytest.param(
            [text("A-1042")], "template_parameters_mismatch", "missing status", id="missing"
        ),
        pytest.param(
            [text("A-1042"), text("shipped"), text("today")],
            "template_parameters_mismatch",
            "1 extra (parameter 3)",
            id="extra",
        ),
        pytest.param(
            [text("A-1042"), text("")],
            "invalid_template_parameter",
            "body parameter 2 (status) has empty text",
            id="empty-text",
        ),
    ],
)
async def test_wrong_parameters_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient,
    bus: Bus,
    ctx: ServiceContext,
    new_operator: NewOperator,
    parameters: list[dict[str, Any]],
    code: str,
    reason: str,
) -> None:
    token = await new_operator()
    wa_id = await closed_window(bus, client, token)
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    before = await client.get(f"/api/v1/conversations/{conversation_id}", headers=auth(token))

    refused = await client.post(
        "/api/v1/operator-message",
        json={"wa_id": wa_id, "template": order_update(*parameters), "client_id": "m1"},
        headers=auth(token),
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == code
    assert refused.json()["detail"].startswith("template order_update (en_US): ")
    assert reason in refused.json()["detail"]
    assert "order_number, status" in refused.json()["hint"]
    assert await written(ctx, conversation_id) == [0, 0, 0]
    after = await client.get(f"/api/v1/conversations/{conversation_id}", headers=auth(token))
    assert after.json() == before.json()

    # Corrected, with the same client id: sent, and only this one ever reaches `wa.outbound`.
    fixed = await client.post(
        "/api/v1/operator-message",
        json={
            "wa_id": wa_id,
            "template": order_update(text("A-1042"), text("shipped")),
            "client_id": "m1",
        },
        headers=auth(token),
    )
    assert fixed.status_code == 202, fixed.text
    commands = await wait_until(lambda: commands_to(bus, wa_id), what="the corrected template")
    assert [c["command_id"] for c in commands] == [fixed.json()["command_id"]]
    transcript, _, audited = await written(ctx, conversation_id)
    assert (transcript, audited) == (1, 1)


async def test_a_template_listed_without_parameters_is_passed_on_unchecked(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = await closed_window(bus, client, token)
    for template in (
        {"name": "order_update", "language": {"code": "es"}},
        order_update(text("A-1042"), text(""), {"type": "currency"}, language="es"),
    ):
        sent = await client.post(
            "/api/v1/operator-message",
            json={"wa_id": wa_id, "template": template},
            headers=auth(token),
        )
        assert sent.status_code == 202, sent.text
