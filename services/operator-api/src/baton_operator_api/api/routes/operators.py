"""Operator management (admins only): create operators and list them."""

from __future__ import annotations

from fastapi import APIRouter, status

from baton_operator_api.api.deps import Context, CurrentAdmin
from baton_operator_api.api.schemas import OperatorCreated, OperatorIn, OperatorOut
from baton_operator_api.auth import Role, new_token
from baton_operator_api.db import operators
from baton_operator_api.errors import responses

router = APIRouter(
    prefix="/api/v1/operators", tags=["operators"], responses=responses(400, 401, 403, 413, 422)
)


@router.post("", response_model=OperatorCreated, status_code=status.HTTP_201_CREATED)
async def create_operator(body: OperatorIn, ctx: Context, me: CurrentAdmin) -> OperatorCreated:
    """Create (or re-role) an operator and issue a new token, shown only in this answer."""
    token = new_token()
    async with ctx.db.session() as session:
        operator = await operators.upsert(session, body.name, Role(body.role))
        await operators.add_token(session, operator.id, token, label="api")
        await operators.audit(
            session, me.name, "create_operator", None, name=body.name, role=body.role
        )
    return OperatorCreated(name=operator.name, role=operator.role.value, token=token)


@router.get("", response_model=list[OperatorOut])
async def list_operators(ctx: Context, _: CurrentAdmin) -> list[OperatorOut]:
    """Every operator."""
    async with ctx.db.session() as session:
        rows = await operators.list_all(session)
    return [OperatorOut.model_validate(r) for r in rows]
