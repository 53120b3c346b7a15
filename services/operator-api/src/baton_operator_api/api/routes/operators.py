"""Operator management (admins only): create operators, list them, issue a new token (the
old ones revoked), and deactivate one (every token revoked)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from baton_operator_api.api.deps import Context, CurrentAdmin
from baton_operator_api.api.schemas import OperatorCreated, OperatorIn, OperatorOut
from baton_operator_api.auth import Role, new_token
from baton_operator_api.db import operators
from baton_operator_api.errors import ControlConflictError, NotFoundError, responses

router = APIRouter(
    prefix="/api/v1/operators",
    tags=["operators"],
    responses=responses(400, 401, 403, 404, 409, 413, 422),
)

OperatorName = Annotated[str, Path(min_length=1, max_length=100)]


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


@router.post("/{name}/token", response_model=OperatorCreated, status_code=status.HTTP_201_CREATED)
async def rotate_token(name: OperatorName, ctx: Context, me: CurrentAdmin) -> OperatorCreated:
    """Issue the operator a new token, shown only in this answer; every older token of theirs
    stops working at once (a leaked or lost token, a laptop gone)."""
    token = new_token()
    async with ctx.db.session() as session:
        operator = await operators.by_name(session, name)
        if operator is None:
            raise NotFoundError(f"no operator {name!r}")
        if not operator.active:  # a token of theirs would be refused at every request
            raise ControlConflictError(
                f"operator {name!r} is deactivated",
                hint="POST /api/v1/operators with the name makes them active again",
            )
        await operators.revoke_all(session, operator.id)
        await operators.add_token(session, operator.id, token, label="api")
        await operators.audit(session, me.name, "rotate_token", None, name=name)
    return OperatorCreated(name=operator.name, role=operator.role.value, token=token)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def deactivate_operator(name: OperatorName, ctx: Context, me: CurrentAdmin) -> Response:
    """Deactivate the operator (someone who left): every token of theirs stops working at once.
    `POST /api/v1/operators` with the name makes them active again, with a new token."""
    if name == me.name:
        raise ControlConflictError(
            "an admin cannot deactivate themselves", hint="ask another admin"
        )
    async with ctx.db.session() as session:
        operator = await operators.by_name(session, name)
        if operator is None:
            raise NotFoundError(f"no operator {name!r}")
        await operators.deactivate(session, operator.id)
        await operators.audit(session, me.name, "deactivate_operator", None, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
