"""Auth matrix, bootstrap admin, request validation and bounded bodies, audit log."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from baton_operator_api.auth import Role
from baton_operator_api.bootstrap import bootstrap_admin, create_operator
from baton_operator_api.context import ServiceContext
from baton_operator_api.db.models import audit_log
from baton_operator_api.settings import OperatorApiSettings
from baton_shared.streams.bus import Bus

from .conftest import NewOperator, auth, customer_writes, new_wa_id

pytestmark = pytest.mark.integration

PROTECTED = [
    ("POST", "/api/v1/takeover"),
    ("POST", "/api/v1/operator-message"),
    ("POST", "/api/v1/handback"),
    ("GET", "/api/v1/conversations"),
    ("GET", "/api/v1/conversations/x"),
    ("GET", "/api/v1/conversations/x/messages"),
    ("POST", "/api/v1/conversations/x/resolve"),
    ("GET", "/api/v1/events"),
    ("GET", "/stats"),
    ("GET", "/api/v1/operators"),
    ("POST", "/api/v1/operators"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_no_or_bad_token_is_401(client: httpx.AsyncClient, method: str, path: str) -> None:
    assert (await client.request(method, path, json={})).status_code == 401
    bad = auth("bat_not-a-real-token")
    assert (await client.request(method, path, json={}, headers=bad)).status_code == 401


async def test_admin_endpoints_refuse_operators_with_403(
    client: httpx.AsyncClient, new_operator: NewOperator, admin_token: str
) -> None:
    token = await new_operator()
    body = {"name": "mallory", "role": "admin"}
    assert (
        await client.post("/api/v1/operators", json=body, headers=auth(token))
    ).status_code == 403
    assert (await client.get("/api/v1/operators", headers=auth(token))).status_code == 403
    assert (await client.get("/api/v1/operators", headers=auth(admin_token))).status_code == 200


async def test_bootstrap_token_rotation_revokes_the_old_one(
    client: httpx.AsyncClient, ctx: ServiceContext, admin_token: str
) -> None:
    name = ctx.settings.bootstrap_admin_name
    await bootstrap_admin(ctx.db, name, admin_token + "-rotated")
    assert (await client.get("/stats", headers=auth(admin_token))).status_code == 401
    assert (await client.get("/stats", headers=auth(admin_token + "-rotated"))).status_code == 200


async def test_create_operator_issues_a_working_token(
    client: httpx.AsyncClient, ctx: ServiceContext
) -> None:
    token = await create_operator(ctx.db, "cli-made", Role.OPERATOR)
    assert (await client.get("/api/v1/conversations", headers=auth(token))).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"wa_id": ""},
        {"wa_id": "not a phone!"},
        {"wa_id": "123", "phone_number_id": "x" * 100},
        {"wa_id": "123", "reason": "r" * 501},
        {"wa_id": 123.5},
    ],
)
async def test_invalid_takeover_bodies_get_422_with_field_errors(
    client: httpx.AsyncClient, new_operator: NewOperator, body: dict[str, object]
) -> None:
    token = await new_operator()
    response = await client.post("/api/v1/takeover", json=body, headers=auth(token))
    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"wa_id": "123"},
        {"wa_id": "123", "media": {"type": "image"}},
        {"wa_id": "123", "media": {"type": "image", "id": "1", "link": "https://x/y"}},
        {"wa_id": "123", "text": "a", "template": {"name": "t", "language": {"code": "en"}}},
        {"wa_id": "123", "media": {"id": "1"}},
    ],
)
async def test_invalid_operator_messages_get_422(
    client: httpx.AsyncClient, new_operator: NewOperator, body: dict[str, object]
) -> None:
    token = await new_operator()
    response = await client.post("/api/v1/operator-message", json=body, headers=auth(token))
    assert response.status_code == 422


async def test_oversized_body_is_413(client: httpx.AsyncClient, new_operator: NewOperator) -> None:
    token = await new_operator()
    body = {"wa_id": "123", "text": "x" * 100_000}
    response = await client.post("/api/v1/operator-message", json=body, headers=auth(token))
    assert response.status_code == 413


async def test_operator_actions_land_in_the_audit_log(
    client: httpx.AsyncClient, bus: Bus, ctx: ServiceContext, new_operator: NewOperator
) -> None:
    token = await new_operator("auditee")
    wa_id = new_wa_id()
    conversation_id = await customer_writes(bus, client, token, wa_id)
    await client.post("/api/v1/takeover", json={"wa_id": wa_id}, headers=auth(token))
    await client.post(
        "/api/v1/operator-message", json={"wa_id": wa_id, "text": "hi"}, headers=auth(token)
    )
    await client.post("/api/v1/handback", json={"wa_id": wa_id}, headers=auth(token))
    async with ctx.db.session() as session:
        rows = (
            await session.execute(
                select(audit_log.c.operator, audit_log.c.action)
                .where(audit_log.c.conversation_id == conversation_id)
                .order_by(audit_log.c.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("auditee", "takeover"),
        ("auditee", "message"),
        ("auditee", "handback"),
    ]


async def test_an_admin_can_rotate_a_token_and_deactivate_an_operator(
    client: httpx.AsyncClient,
    admin_token: str,
    new_operator: NewOperator,
    settings: OperatorApiSettings,
) -> None:
    name = f"leaver-{uuid.uuid4().hex[:6]}"
    old = await new_operator(name)
    me = auth(old)
    assert (await client.get("/api/v1/conversations", headers=me)).status_code == 200

    # A leaked token: a new one is issued and the old one stops working at once.
    rotated = await client.post(f"/api/v1/operators/{name}/token", headers=auth(admin_token))
    assert rotated.status_code == 201
    new = rotated.json()["token"]
    assert (await client.get("/api/v1/conversations", headers=me)).status_code == 401
    assert (await client.get("/api/v1/conversations", headers=auth(new))).status_code == 200

    # The operator leaves: deactivated, every token refused.
    gone = await client.delete(f"/api/v1/operators/{name}", headers=auth(admin_token))
    assert gone.status_code == 204
    assert (await client.get("/api/v1/conversations", headers=auth(new))).status_code == 401
    listed = await client.get("/api/v1/operators", headers=auth(admin_token))
    assert {"name": name, "role": "operator", "active": False} in listed.json()

    # Operators cannot do it, unknown names are 404, and an admin cannot lock themselves out.
    other = await new_operator()
    assert (
        await client.delete(f"/api/v1/operators/{name}", headers=auth(other))
    ).status_code == 403
    assert (
        await client.post("/api/v1/operators/nobody/token", headers=auth(admin_token))
    ).status_code == 404
    myself = settings.bootstrap_admin_name
    refused = await client.delete(f"/api/v1/operators/{myself}", headers=auth(admin_token))
    assert refused.status_code == 409
